"""LLM.GET / LLM.SET: one lookup through L1, L2 and the semantic layer, with backfill, one lease
per question, and one store into every layer — embedded and shared."""
import json
import os
import shutil
import struct
import subprocess
import sys
import threading

import pytest
import redis

from conftest import ROOT, SLUICE_BIN, as_dict, run_together, wait_for

Q = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"
OTHER_PARAPHRASE = "How do I reset the password?"
TRAP = "How do I reset my username?"
# A rewording in synonyms: the verifier takes it, under the default bar.
STORED, REWORDED = "Is it safe to swim after eating", "Is it secure to bathe after dining"


def written_back_copy(c, *set_options):
    """Stores STORED in namespace care and asks REWORDED: a semantic hit, written back."""
    c.execute_command("LLM.SET", "care", STORED, "Wait a little.", *set_options)
    first = llm_get(c, REWORDED, ns="care")
    assert first["layer"] == "semantic", first
    return first


def started(make_sluice, redis_server, mode):
    """One instance, embedded or sharing `redis_server`."""
    return make_sluice(*(["--redis", redis_server.url] if mode == "shared" else [])).start()


def llm_get(c, prompt, *options, ns="faq"):
    reply = c.execute_command("LLM.GET", ns, prompt, *options)
    answer, layer, score, matched, age, lease = reply[:6]
    return {"answer": answer, "layer": layer.decode(), "score": score, "matched": matched, "age": age, "lease": lease,
            "why": reply[6].decode() if len(reply) > 6 else None}


def test_each_layer_answers_in_turn_and_a_semantic_hit_is_written_back(make_sluice):
    node = make_sluice().start()
    c = node.client()
    miss = llm_get(c, Q, "WHY")
    assert miss["answer"] is None and miss["layer"] == "miss" and miss["why"] == "no entry in this scope"
    assert c.execute_command("LLM.SET", "faq", Q, "Use the reset link.", "TOKENS", "50", "COST", "0.01") == b"OK"
    assert llm_get(c, Q)["layer"] == "l1"
    # The semantic layer answers a paraphrase, and writes it back: the same paraphrase again is an L1 hit.
    first = llm_get(c, PARAPHRASE)
    assert (first["answer"], first["layer"], first["matched"]) == (b"Use the reset link.", "semantic", Q.encode())
    again = llm_get(c, PARAPHRASE)
    assert (again["answer"], again["layer"]) == (b"Use the reset link.", "l1")
    assert float(again["score"]) == pytest.approx(float(first["score"]))
    # A trap is refused, and says why.
    trap = llm_get(c, TRAP, "WHY")
    assert trap["answer"] is None and trap["layer"] == "miss" and trap["why"].startswith("trap:")
    # After a restart L1 is empty: the stored answer comes from the file, at l2.
    node.stop()
    node.start()
    c = node.client()
    assert llm_get(c, Q)["layer"] == "l2"
    assert llm_get(c, Q)["layer"] == "l1"
    assert llm_get(c, PARAPHRASE)["layer"] in ("l2", "l1")
    stats = as_dict(c.execute_command("STATS"))
    assert stats[b"llm_hits_l2"] >= 1 and stats[b"llm_hits_l1"] >= 1 and stats[b"llm_misses"] == 0


def test_l1_hits_are_counted_exactly_where_they_are_read(make_sluice):
    # L1 hits are tallied per connection and reported once per read batch: a pipeline's STATS
    # sees its own hits, another connection and /metrics see them once the replies are out.
    node = make_sluice().start()
    c, other = node.client(), node.client()
    c.execute_command("LLM.SET", "faq", Q, "Use the reset link.")
    before = as_dict(other.execute_command("STATS"))[b"llm_hits_l1"]
    p = c.pipeline(transaction=False)
    for _ in range(25):
        p.execute_command("LLM.GET", "faq", Q)
    p.execute_command("STATS")
    for _ in range(5):
        p.execute_command("LLM.GET", "faq", Q)
    replies = p.execute()
    assert all(r[1] == b"l1" for r in replies[:25] + replies[26:])
    assert as_dict(replies[25])[b"llm_hits_l1"] == before + 25
    assert as_dict(other.execute_command("STATS"))[b"llm_hits_l1"] == before + 30
    status, _, body = node.http("/metrics")
    assert status == 200 and f'sluice_llm_lookups_total{{layer="l1"}} {before + 30}' in body.decode()


def test_l1_hits_that_exec_runs_after_a_slow_command_are_counted_before_its_reply(make_sluice):
    # EXEC's commands after one answered later (an L2 read) run outside any read batch: their
    # L1 hits are reported with the reply, not at the connection's next request (found in review).
    node = make_sluice().start()
    node.client().execute_command("LLM.SET", "faq", Q, "from the file")
    node.stop()
    node.start()
    c, other = node.client(), node.client()
    c.execute_command("LLM.SET", "faq", PARAPHRASE, "from memory")
    before = as_dict(other.execute_command("STATS"))
    p = c.pipeline(transaction=True)
    p.execute_command("LLM.GET", "faq", Q)  # only in the file: an L2 read, answered later
    p.execute_command("LLM.GET", "faq", PARAPHRASE)  # in L1: a direct hit, after the read
    first, second = p.execute()
    assert (first[0], first[1], second[0], second[1]) == (b"from the file", b"l2", b"from memory", b"l1")
    after = as_dict(other.execute_command("STATS"))
    assert after[b"llm_hits_l1"] == before[b"llm_hits_l1"] + 1
    assert after[b"llm_hits_l2"] == before[b"llm_hits_l2"] + 1


def test_fifty_concurrent_misses_get_one_lease(make_sluice):
    node = make_sluice().start()

    def ask(_):
        return llm_get(node.client(), "What is the capital of Australia?", "LEASE", "10000")["lease"]

    leases = [t for t in run_together(50, ask) if t is not None]
    assert len(leases) == 1
    c = node.client()
    # A wrong token is refused and stores nothing; the holder's stores and ends the lease.
    with pytest.raises(redis.ResponseError, match="lease token"):
        c.execute_command("LLM.SET", "faq", "What is the capital of Australia?", "Sydney", "LEASE", "12345")
    assert llm_get(c, "What is the capital of Australia?")["layer"] == "miss"
    assert c.execute_command("LLM.SET", "faq", "What is the capital of Australia?", "Canberra", "LEASE", leases[0]) == b"OK"
    assert llm_get(c, "What is the capital of Australia?")["answer"] == b"Canberra"


def test_a_bad_verdict_retires_the_written_back_copies(make_sluice):
    c = make_sluice().start().client()
    c.execute_command("LLM.SET", "faq", Q, "Use the reset link.")
    a = llm_get(c, PARAPHRASE)
    b = llm_get(c, OTHER_PARAPHRASE)
    assert a["layer"] == b["layer"] == "semantic"
    assert llm_get(c, PARAPHRASE)["layer"] == "l1" and llm_get(c, OTHER_PARAPHRASE)["layer"] == "l1"
    verdict = c.execute_command("SEM.FEEDBACK", "faq", PARAPHRASE, "bad")
    threshold = float(verdict[2])
    # The judged prompt's copy is gone at once; it is not answered from the entry any more.
    after = llm_get(c, PARAPHRASE, "WHY")
    assert after["layer"] == "miss", after
    # The other paraphrase's copy stands only if the entry would still answer it.
    other = llm_get(c, OTHER_PARAPHRASE, "WHY")
    if float(b["score"]) < threshold:
        assert other["layer"] == "miss"
        assert as_dict(c.execute_command("STATS"))[b"llm_backfills_retired"] >= 1
    else:
        assert other["layer"] == "l1"
    # A newer answer for the entry's prompt retires copies of the old one.
    c.execute_command("LLM.SET", "faq", Q, "Use the new reset page.")
    for prompt in (OTHER_PARAPHRASE,):
        got = llm_get(c, prompt)
        assert got["answer"] in (None, b"Use the new reset page.")


def test_a_rewording_found_under_the_bar_is_written_back_and_kept(make_sluice):
    # A rewording in synonyms scores under the default bar; its written-back copy must be served
    # from L1 next time, not retired and written again on every read.
    c = make_sluice().start().client()
    stored, reworded = STORED, REWORDED
    first = written_back_copy(c)
    assert float(first["score"]) < 0.7, first
    for _ in range(3):
        assert llm_get(c, reworded, ns="care")["layer"] == "l1"
    stats = as_dict(c.execute_command("STATS"))
    assert stats[b"llm_backfills"] == 1 and stats[b"llm_backfills_retired"] == 0, stats
    # A bad verdict on the entry through another question (over the bar): the copy made under
    # the bar is retired on its next read, and the entry no longer answers under the bar.
    verdict = c.execute_command("SEM.FEEDBACK", "care", "Is it secure to swim after dining", "bad")
    assert verdict[0] == stored.encode() and float(verdict[1]) >= 0.7, verdict
    assert llm_get(c, reworded, ns="care")["layer"] == "miss"
    assert as_dict(c.execute_command("STATS"))[b"llm_backfills_retired"] == 1


def test_stale_answers_come_last(make_sluice):
    c = make_sluice("--max-stale", "60000").start().client()
    c.execute_command("LLM.SET", "weather", "Weather in Paris?", "Sunny", "PX", "50")
    assert wait_for(lambda: llm_get(c, "Weather in Paris?", ns="weather")["layer"] == "miss", 2) is not None
    stale = llm_get(c, "Weather in Paris?", "STALE", "60000", ns="weather")
    assert (stale["answer"], stale["layer"]) == (b"Sunny", "stale")


def test_errors(make_sluice):
    c = make_sluice().start().client()
    for args, message in ((["LLM.GET", "ns", "p", "LEASE", "0"], "LEASE must be"), (["LLM.GET", "ns", "p", "MINSCORE", "2"], "MINSCORE"),
                          (["LLM.GET", "ns", "p", "BOGUS", "1"], "syntax"), (["LLM.SET", "ns", "p", "a", "LEASE", "x"], "LEASE token"),
                          (["LLM.SET", "ns", "p", "a", "PX", "0"], "invalid expire")):
        with pytest.raises(redis.ResponseError, match=message):
            c.execute_command(*args)


def test_names_and_prompts_read_in_place_from_the_request(make_sluice):
    """LLM.GET reads its namespace and prompt as spans of the request frame (no slices) and
    echoes an exact hit's prompt from the key it built: each edge of that — names checked for
    length before UTF-8, non-ASCII names, an empty prompt, SCOPE, an inline request, a request
    pipelined behind others in one read — answers as the sliced path did."""
    node = make_sluice().start()
    c = node.client()
    with pytest.raises(redis.ResponseError, match="namespace is not valid UTF-8"):
        c.execute_command("LLM.GET", b"t\xff", "q")
    with pytest.raises(redis.ResponseError, match="namespace is longer than 1024 bytes"):
        c.execute_command("LLM.GET", "n" * 1025, "q")
    # Too long and not ASCII: the length is what is reported, as for a sliced name.
    with pytest.raises(redis.ResponseError, match="namespace is longer than 1024 bytes"):
        c.execute_command("LLM.GET", "\u00e9" * 1025, "q")
    assert c.execute_command("LLM.SET", "caf\u00e9", "Où est la gare ?", "Tout droit") == b"OK"
    hit = llm_get(c, "Où est la gare ?", ns="caf\u00e9")
    assert (hit["answer"], hit["layer"], hit["matched"]) == ("Tout droit".encode(), "l1", "Où est la gare ?".encode())
    assert llm_get(c, "Où est la gare ?", ns="cafe")["layer"] == "miss"
    # The same name spelled with a combining accent is another namespace in every layer (the
    # semantic layer once keyed names as Strings, which compare canonically: it answered, and
    # LLM.GET wrote that answer into the other namespace's exact key).
    assert llm_get(c, "Où est la gare ?", "WHY", ns="cafe\u0301")["layer"] == "miss"
    assert llm_get(c, "Où est la gare ?", ns="cafe\u0301")["layer"] == "miss"
    assert c.execute_command("LLM.SET", "faq", Q, "for the composed scope", "SCOPE", "caf\u00e9") == b"OK"
    assert llm_get(c, PARAPHRASE, "SCOPE", "cafe\u0301")["layer"] == "miss"
    assert llm_get(c, PARAPHRASE, "SCOPE", "caf\u00e9")["answer"] == b"for the composed scope"
    # An empty prompt (and an empty namespace) is a key like any other; its echo is empty.
    assert c.execute_command("LLM.SET", "", "", "nothing asked") == b"OK"
    empty = llm_get(c, "", ns="")
    assert (empty["answer"], empty["layer"], empty["matched"]) == (b"nothing asked", "l1", b"")
    # A scope is part of the key: the same prompt in another scope is another question.
    assert c.execute_command("LLM.SET", "faq", Q, "scoped", "SCOPE", "user:1") == b"OK"
    assert llm_get(c, Q, "SCOPE", "user:1")["answer"] == b"scoped"
    assert llm_get(c, Q, "SCOPE", "user:2")["answer"] != b"scoped"
    # Inline (re-encoded by the parser) and pipelined behind other requests in one read.
    import socket
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        s.sendall(b"PING\r\nLLM.GET caf\xc3\xa9 x\r\n*3\r\n$7\r\nLLM.GET\r\n$0\r\n\r\n$0\r\n\r\nLLM.GET \"\" \"\"\r\n")
        want = b"+PONG\r\n"
        want += b"*6\r\n$-1\r\n$4\r\nmiss\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n"
        data = b""
        while data.count(b"nothing asked") < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(want)
    assert data[len(want):].count(b"$13\r\nnothing asked\r\n$2\r\nl1\r\n$3\r\n1.0\r\n$0\r\n\r\n") == 2


def test_shared_mode_across_two_instances(make_sluice, redis_server):
    a = make_sluice("--redis", redis_server.url).start()
    b = make_sluice("--redis", redis_server.url).start()
    ca, cb = a.client(), b.client()
    for c in (ca, cb):
        assert wait_for(lambda c=c: as_dict(c.execute_command("STATS")).get(b"l2_redis_subscribed") == 1, 5) is not None
    assert ca.execute_command("LLM.SET", "faq", Q, "Use the reset link.") == b"OK"
    assert llm_get(cb, Q)["layer"] == "l2"
    # B's index follows the shared stream; then a paraphrase hits there and is written back for everyone.
    assert wait_for(lambda: llm_get(cb, PARAPHRASE)["layer"] == "semantic", 5) is not None
    assert llm_get(ca, PARAPHRASE)["layer"] == "l2"

    # One lease across both instances.
    def ask(i):
        return llm_get((ca, cb)[i % 2], "Shared question?", "LEASE", "10000")["lease"]

    assert len([t for t in run_together(20, ask) if t is not None]) == 1


def test_a_prompt_the_semantic_layer_cannot_index_lives_in_the_exact_layers(make_sluice):
    c = make_sluice().start().client()
    for prompt in ("???", "x" * 70_000):
        first = llm_get(c, prompt, "LEASE", "5000", "WHY")
        assert first["layer"] == "miss" and first["lease"] is not None
        assert c.execute_command("LLM.SET", "faq", prompt, "an answer", "LEASE", first["lease"]) == b"OK"
        assert llm_get(c, prompt)["layer"] == "l1"


def test_bytes_that_are_not_utf8_never_make_two_questions_one(make_sluice):
    """Found by an attack: LLM.SET keyed "\\xff" and "\\xfe" both as U+FFFD (one overwrote the
    other, and LLM.GET of either missed), and SEM.* read two namespaces as one. The exact layers
    take the prompt's bytes as sent; names, and prompts for the semantic layer, must be text."""
    c = make_sluice().start().client()
    assert c.execute_command("LLM.SET", "u8", b"\xff", "A") == b"OK"
    assert c.execute_command("LLM.SET", "u8", b"\xfe", "B") == b"OK"
    assert c.execute_command("LLM.SET", "u8", "caf\xe9".encode("latin-1"), "C") == b"OK"
    for prompt, answer in ((b"\xff", b"A"), (b"\xfe", b"B"), ("caf\xe9".encode("latin-1"), b"C")):
        hit = llm_get(c, prompt, ns="u8")
        assert (hit["answer"], hit["layer"], hit["matched"]) == (answer, "l1", prompt)
    with pytest.raises(redis.ResponseError, match="namespace is not valid UTF-8"):
        c.execute_command("LLM.SET", b"t\xff", "q", "a")
    with pytest.raises(redis.ResponseError, match="scope is not valid UTF-8"):
        c.execute_command("LLM.GET", "u8", "q", "SCOPE", b"\xfe")
    with pytest.raises(redis.ResponseError, match="namespace is not valid UTF-8"):
        c.execute_command("SEM.SET", b"t\xff", "shared question", "SECRET")
    with pytest.raises(redis.ResponseError, match="prompt is not valid UTF-8"):
        c.execute_command("SEM.GET", "u8", b"\xff")
    # The length is checked before anything reads the prompt: 16 MB of 0xFF is refused at once.
    with pytest.raises(redis.ResponseError, match="longer than 65536 bytes"):
        c.execute_command("SEM.GET", "u8", b"\xff" * 16_000_000)
    miss = llm_get(c, b"\xff" * 16_000_000, "WHY", ns="u8")
    assert miss["layer"] == "miss" and "cannot index" in miss["why"]


def test_every_key_llm_set_makes_can_be_named(make_sluice):
    """Found by an attack: a prompt just under the 16 MiB bulk limit made an `llm:` key over it,
    stored and answered by LLM.GET but out of reach of DEL, GET and CACHE.GET. LLM.SET refuses it."""
    node = make_sluice("--max-value-size", "100000").start()
    c = node.client()
    prompt = "p" * 99_990
    with pytest.raises(redis.ResponseError, match="prompt too long: its key would be 100003 bytes"):
        c.execute_command("LLM.SET", "big", prompt, "a")
    # LLM.GET answers a miss without a lease (LLM.SET could not fulfil it), and says why.
    miss = llm_get(c, prompt, "LEASE", "5000", "WHY", ns="big")
    assert (miss["layer"], miss["lease"]) == ("miss", None) and "prompt too long: its key would be 100003 bytes" in miss["why"]
    scoped = llm_get(c, "p" * 99_987, "SCOPE", "s", "LEASE", "5000", ns="big")
    assert (scoped["layer"], scoped["lease"]) == ("miss", None)
    fits = "p" * 99_987
    assert c.execute_command("LLM.SET", "big", fits, "a") == b"OK"
    key = b"llm:3:big:0::" + fits.encode()
    assert len(key) == 100_000 and c.execute_command("CACHE.GET", key)[0] == b"\x53\x4c\x4d\x31\x00a"
    assert c.delete(key) == 1 and llm_get(c, fits, ns="big")["layer"] == "miss"


def test_a_written_back_copy_never_answers_under_the_callers_minscore(make_sluice):
    # A copy answers at the score its entry did: a caller asking for more must not get it from
    # L1, where the semantic layer would have refused it.
    c = make_sluice().start().client()
    reworded = REWORDED
    key = "llm:4:care:0::" + reworded
    first = written_back_copy(c)
    assert float(first["score"]) < 0.9, first
    assert llm_get(c, reworded, ns="care")["layer"] == "l1"
    # A bar at or under the copy's score is served from L1; one over it is not.
    assert llm_get(c, reworded, "MINSCORE", str(float(first["score"]) - 0.01), ns="care")["layer"] == "l1"
    strict = llm_get(c, reworded, "MINSCORE", "0.95", "WHY", ns="care")
    assert strict["answer"] is None and strict["layer"] == "miss", strict
    assert strict["why"].startswith("below minscore"), strict
    # Without LEASE the copy is passed over, not deleted: it still answers everyone else.
    assert llm_get(c, reworded, ns="care")["layer"] == "l1"
    assert as_dict(c.execute_command("STATS"))[b"llm_backfills_retired"] == 0
    # With LEASE the caller retires the copy and is granted the lease: nobody else holds one,
    # and while the copy held the key no miss could grant one (a guarded call would wait for it
    # until its timeout).
    leased = llm_get(c, reworded, "MINSCORE", "0.95", "LEASE", "5000", ns="care")
    assert leased["layer"] == "miss" and leased["lease"] is not None, leased
    assert as_dict(c.execute_command("STATS"))[b"llm_backfills_retired"] == 1
    # Meanwhile a laxer caller is answered by the semantic layer; its copy waits for the holder.
    assert llm_get(c, reworded, ns="care")["layer"] == "semantic"
    assert c.execute_command("CACHE.GET", key)[0] is None
    # The holder's answer answers everyone.
    assert c.execute_command("LLM.SET", "care", reworded, "Wait an hour.", "LEASE", leased["lease"]) == b"OK"
    direct = llm_get(c, reworded, "MINSCORE", "0.95", ns="care")
    assert (direct["answer"], direct["layer"], float(direct["score"])) == (b"Wait an hour.", "l1", 1.0)


def test_a_lease_granted_before_the_semantic_layer_failed_is_handed_to_the_caller(make_sluice):
    # The exact layers' miss grants the lease; then the semantic layer cannot answer (here: the
    # namespace holds client vectors of another size than the built-in embedder's). The caller
    # gets a miss that carries its token, not an error that drops it; the others wait for it.
    c = make_sluice().start().client()
    assert c.execute_command("SEM.SET", "vecs", "anything", "x", "VEC", struct.pack("<3f", 1, 0, 0)) == b"OK"
    with pytest.raises(redis.ResponseError):
        llm_get(c, Q, ns="vecs")
    holder = llm_get(c, Q, "LEASE", "10000", "WHY", ns="vecs")
    assert holder["layer"] == "miss" and holder["lease"] is not None, holder
    assert holder["why"].startswith("the semantic layer could not answer"), holder
    waiter = llm_get(c, Q, "LEASE", "10000", ns="vecs")
    assert waiter["layer"] == "miss" and waiter["lease"] is None, waiter
    # Its LLM.SET stores neither layer (the semantic one refuses the prompt again) and says so.
    with pytest.raises(redis.ResponseError, match="stored neither layer"):
        c.execute_command("LLM.SET", "vecs", Q, "answer", "LEASE", holder["lease"])
    assert llm_get(c, Q, "LEASE", "10000", ns="vecs")["lease"] is not None


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_a_copy_written_back_for_a_reader_never_ends_anothers_lease(make_sluice, redis_server, mode):
    # A strict caller holds the question's lease; a laxer caller is answered by the semantic
    # layer meanwhile. Its copy must not be written over the lease (which would end it, refuse
    # the holder's LLM.SET, and let the next strict caller take a second lease).
    c = started(make_sluice, redis_server, mode).client()
    stored, reworded = STORED, REWORDED
    key = "llm:4:care:0::" + reworded
    c.execute_command("LLM.SET", "care", stored, "Wait a little.")
    holder = llm_get(c, reworded, "MINSCORE", "0.95", "LEASE", "10000", ns="care")
    assert holder["layer"] == "miss" and holder["lease"] is not None, holder
    lax = llm_get(c, reworded, ns="care")
    assert lax["layer"] == "semantic", lax
    assert c.execute_command("CACHE.GET", key)[0] is None
    second = llm_get(c, reworded, "MINSCORE", "0.95", "LEASE", "10000", ns="care")
    assert second["layer"] == "miss" and second["lease"] is None, second
    assert c.execute_command("LLM.SET", "care", reworded, "Wait an hour.", "LEASE", holder["lease"]) == b"OK"
    assert llm_get(c, reworded, ns="care")["answer"] == b"Wait an hour."
    # Without a lease outstanding, the copy is written back as before.
    other = "Is it secure to swim after dining"
    assert llm_get(c, other, ns="care")["layer"] == "semantic"
    assert llm_get(c, other, ns="care")["layer"] == "l1"


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_pipelined_questions_each_keep_their_own_key(make_sluice, redis_server, mode):
    # A question's key is built in the connection's scratch buffer, which goes back to the
    # connection while the answer may still be on its way (shared mode: from Redis), and is
    # used again when it comes: for the lease, and for the copy a semantic hit writes back.
    c = started(make_sluice, redis_server, mode).client()
    topics = ["reset my password", "change my email address", "cancel my subscription",
              "update my billing details", "export my invoices", "delete my account"]
    for n, topic in enumerate(topics):
        c.execute_command("LLM.SET", "pipe", f"How do I {topic}?", f"answer {n}")
    p = c.pipeline(transaction=False)
    for topic in topics:
        p.execute_command("LLM.GET", "pipe", f"How can I {topic}?")
        p.execute_command("LLM.GET", "unasked", f"How do I {topic}?", "LEASE", "10000")
    replies = p.execute()
    hits, misses = replies[0::2], replies[1::2]
    assert [(r[0], r[1]) for r in hits] == [(f"answer {n}".encode(), b"semantic") for n in range(len(topics))], hits
    tokens = [r[5] for r in misses]
    assert all(r[1] == b"miss" for r in misses) and None not in tokens and len(set(tokens)) == len(topics), misses
    for n, topic in enumerate(topics):
        # Each paraphrase's copy was written under its own key...
        assert c.execute_command("CACHE.GET", f"llm:4:pipe:0::How can I {topic}?")[0].endswith(f"answer {n}".encode())
        got = llm_get(c, f"How can I {topic}?", ns="pipe")
        assert (got["layer"], got["answer"]) == ("l1", f"answer {n}".encode()), (topic, got)
        # ... and each miss leased its own question.
        question = f"How do I {topic}?"
        assert c.execute_command("LLM.SET", "unasked", question, f"new {n}", "LEASE", tokens[n]) == b"OK", question
        assert llm_get(c, question, ns="unasked")["answer"] == f"new {n}".encode()


def test_stale_serves_answers_never_written_back_copies(make_sluice):
    # An expired copy has no entry left to be checked against (a bad verdict since would not
    # show), so STALE serves only answers LLM.SET stored for the very prompt.
    c = make_sluice("--max-stale", "60000").start().client()
    reworded = REWORDED
    written_back_copy(c, "PX", "1500")
    # Both the entry and its copy (which has the entry's expiry) expire.
    assert wait_for(lambda: llm_get(c, reworded, ns="care")["layer"] == "miss", 5) is not None
    assert llm_get(c, STORED, ns="care")["layer"] == "miss"
    got = llm_get(c, reworded, "STALE", "60000", "WHY", ns="care")
    assert got["answer"] is None and got["layer"] == "miss", got
    own = llm_get(c, STORED, "STALE", "60000", ns="care")
    assert (own["answer"], own["layer"], float(own["score"])) == (b"Wait a little.", "stale", 1.0), own
    assert as_dict(c.execute_command("STATS"))[b"llm_hits_stale"] == 1


def test_two_readers_retiring_one_outdated_copy_get_one_lease(make_sluice):
    # Both readers find the copy, whose entry no longer answers it (a bad verdict raised the
    # entry's threshold), and retire it at once, on two event loops. The second one's delete
    # must not end the lease the first was granted: one question, one lease.
    c = make_sluice("--threads", "2").start()
    clients = [c.client(), c.client()]
    for burst in range(40):
        ns = "retire%d" % burst
        clients[0].execute_command("LLM.SET", ns, STORED, "Wait a little.")
        assert llm_get(clients[0], REWORDED, ns=ns)["layer"] == "semantic"
        clients[0].execute_command("SEM.FEEDBACK", ns, "Is it secure to swim after dining", "bad")
        replies = run_together(2, lambda i, ns=ns: llm_get(clients[i], REWORDED, "LEASE", "30000", ns=ns))
        assert all(r["layer"] == "miss" for r in replies), replies
        tokens = [r["lease"] for r in replies if r["lease"] is not None]
        assert len(tokens) == 1, (burst, replies)


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_an_answer_replaced_within_the_same_millisecond_retires_its_copies(make_sluice, redis_server, mode):
    # A copy is tied to its entry's version, the creation time in milliseconds; a pipeline
    # replaces the answer within the same millisecond, and the copy must go all the same.
    c = started(make_sluice, redis_server, mode).client()
    for n in range(20):
        ns = "same%d" % n
        p = c.pipeline(transaction=False)
        p.execute_command("LLM.SET", ns, Q, "old answer")
        p.execute_command("LLM.GET", ns, PARAPHRASE)
        p.execute_command("LLM.SET", ns, Q, "new answer")
        p.execute_command("LLM.GET", ns, PARAPHRASE)
        replies = p.execute()
        assert (replies[1][0], replies[1][1]) == (b"old answer", b"semantic"), replies
        # Read again once everything above is done (in shared mode the pipelined read may have
        # been answered before the copy was written).
        if mode == "embedded":
            assert replies[3][0] == b"new answer", (n, replies)
        assert llm_get(c, PARAPHRASE, ns=ns)["answer"] == b"new answer", n


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_a_pipelined_llm_set_is_seen_by_the_requests_after_it(make_sluice, redis_server, mode):
    # LLM.SET's semantic write follows the exact one (in shared mode, Redis's answer to it):
    # the connection's next request waits for it.
    c = started(make_sluice, redis_server, mode).client()
    for n in range(10):
        ns = "after%d" % n
        c.execute_command("LLM.SET", ns, Q, "old answer")
        assert llm_get(c, PARAPHRASE, "MINSCORE", "0.5", ns=ns)["answer"] == b"old answer"
        p = c.pipeline(transaction=False)
        p.execute_command("LLM.SET", ns, Q, "new answer")
        p.execute_command("LLM.GET", ns, PARAPHRASE, "MINSCORE", "0.5")
        p.execute_command("LLM.SET", ns, "What is a lease?", "x")
        p.execute_command("SEM.DEL", ns, "What is a lease?")
        replies = p.execute()
        assert replies[0] == b"OK" and replies[3] == 1, (n, replies)
        assert replies[1][0] == b"new answer", (n, replies)
        assert c.execute_command("SEM.GET", ns, "What is a lease?") is None
        assert llm_get(c, PARAPHRASE, "MINSCORE", "0.5", ns=ns)["answer"] == b"new answer", n


def test_a_verdict_that_deletes_the_entry_takes_its_own_answer_too(make_sluice):
    # The verdict names the entry's prompt written another way (its score is ~1: the entry is
    # deleted); the exact answer LLM.SET stored for the entry's prompt was judged with it.
    c = make_sluice().start().client()
    c.execute_command("LLM.SET", "faq", Q, "a wrong answer")
    assert llm_get(c, Q)["layer"] == "l1"
    verdict = c.execute_command("SEM.FEEDBACK", "faq", Q.lower(), "bad")
    assert verdict[0] == Q.encode() and verdict[5] == 1, verdict
    assert llm_get(c, Q)["layer"] == "miss"
    assert llm_get(c, Q.lower())["layer"] == "miss"


def test_a_copy_made_for_a_laxer_reader_is_kept_not_made_again(make_sluice):
    # A reader with a low MINSCORE gets a semantic hit under the namespace's bar; its copy is
    # judged at its own bar on its next reads (an L1 hit, not retired and written again), and a
    # default reader passes over it without deleting it.
    c = make_sluice().start().client()
    c.execute_command("LLM.SET", "faq", Q, "Use the reset link.")
    asked = "How do I change my username?"
    first = llm_get(c, asked, "MINSCORE", "0.5")
    assert first["layer"] == "semantic" and 0.5 <= float(first["score"]) < 0.7, first
    for _ in range(3):
        assert llm_get(c, asked, "MINSCORE", "0.5")["layer"] == "l1"
        assert llm_get(c, asked)["layer"] == "miss"
    stats = as_dict(c.execute_command("STATS"))
    assert stats[b"llm_backfills"] == 1 and stats[b"llm_backfills_retired"] == 0, stats
    # A bad verdict on the entry at that score retires the copy for everyone.
    c.execute_command("SEM.FEEDBACK", "faq", asked, "bad", "MINSCORE", "0.5")
    assert llm_get(c, asked, "MINSCORE", "0.5")["layer"] == "miss"


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_the_cost_benchmark_asks_each_layer_what_it_compares(mode):
    """benchmarks/llm_cost.py (issue 17's figures) stops at the first reply that is not what it
    compares — an LLM.GET that is not an l1 hit or a miss, a CACHE.GET of the key LLM.GET derives
    (docs/PROTOCOL.md) that does not find, in L1, the entry LLM.SET stored, a SEM.GET that answers
    a near-duplicate the verifier must refuse — so a run also checks the derived key and the
    layers. Its figures are not asserted here: a timed assertion tests the machine."""
    args = [sys.executable, os.path.join(ROOT, "benchmarks", "llm_cost.py"), "--sluice", SLUICE_BIN, "--json",
            "--pairs", "1", "--scale", "0.05", "--deadline", "240"]
    if mode == "shared":
        if shutil.which("redis-server") is None:
            pytest.skip("needs redis-server")
        args.append("--shared")
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-500:] + out.stderr[-500:]
    rows = json.loads(out.stdout)
    assert [(r["workload"].split(",")[0], r["depth"]) for r in rows] == [
        ("L1 hit", 1), ("L1 hit", 16), ("miss", 1), ("miss", 16), ("miss", 1), ("miss", 16)]
    assert all(r["llm_us"] > 0 and r["other_us"] > 0 and r["pairs"] == 2 and 0 <= r["pairs_meeting"] <= 2
               and r["meets"] in ("yes", "within the noise", "no") for r in rows)
