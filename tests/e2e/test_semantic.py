"""The semantic cache through real sockets, and GPTCache's own benchmark at the default."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, as_dict

EVAL = os.path.join(os.path.dirname(ROOT), "shared", "eval", "gptcache_mock_data.json")


def test_paraphrase_hit_and_isolation(sluice, protocol):
    r = sluice.client(protocol=protocol)
    assert r.execute_command("SEM.SET", "faq", "How do I reset my password?", "Use Forgot password.", "SCOPE", "m1") == b"OK"
    response, score, matched = r.execute_command("SEM.GET", "faq", "What's the way to reset my password?", "SCOPE", "m1")
    assert response == b"Use Forgot password." and matched == b"How do I reset my password?" and 0.7 <= float(score) <= 1
    assert r.execute_command("SEM.GET", "faq", "What's the way to reset my password?", "SCOPE", "m2") is None
    assert r.execute_command("SEM.GET", "other", "What's the way to reset my password?", "SCOPE", "m1") is None


@pytest.mark.skipif(not os.path.exists(EVAL), reason="../shared/eval is not beside this checkout")
def test_gptcache_benchmark_meets_the_bar_at_the_default(sluice):
    pairs = json.load(open(EVAL))
    r = sluice.client()
    pipe = r.pipeline(transaction=False)
    for i, p in enumerate(pairs):
        pipe.execute_command("SEM.SET", "bench", p["origin"], str(i))
    pipe.execute()
    pipe = r.pipeline(transaction=False)
    for p in pairs:
        pipe.execute_command("SEM.GET", "bench", p["similar"])
    origins = [p["origin"] for p in pairs]
    correct = wrong = 0
    for i, reply in enumerate(pipe.execute()):
        if reply is not None:
            a = int(reply[0])
            if a == i or origins[a] == origins[i]:
                correct += 1
            else:
                wrong += 1
    # Issue 10's bar: at least 930 correct and at most 40 wrong at the default (924 / 40 before
    # rewordings in synonyms were looked at under the bar: DECISIONS "Semantic precision").
    # GPTCache's published figures with its ONNX model at 0.8: 904 correct, 92 wrong.
    assert correct >= 930 and wrong <= 40, (correct, wrong)
    info = as_dict(r.execute_command("SEM.INFO", "bench"))
    assert info[b"entries"] == len(set(origins)) and info[b"embedder"] == b"minilm-tok128-v1"


def test_held_back_pairs_meet_the_bar(sluice):
    """benchmarks/semantic/pairs.jsonl's held-back third (never read pair by pair; see DECISIONS
    "How the development set grew"): at most 5% of its traps answered from cache, at least 85% of
    its paraphrases answered."""
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "semantic", "evaluate.py"), "--port", str(sluice.port),
         "--part", "heldout", "--json"], capture_output=True, text=True, timeout=300, check=True)
    summary = json.loads(out.stdout)
    assert summary["traps"] >= 100 and summary["paraphrases"] >= 80, summary
    assert summary["trap_rate"] <= 0.05 and summary["recall"] >= 0.85, summary


def test_a_rewording_in_synonyms_answers_a_little_under_the_bar(sluice):
    """Averaged token vectors score a rewording made of synonyms under the bar; at the
    namespace's own bar the lookup looks at such candidates (at most 0.1 under it) when most of
    their words align, and the verifier still judges them (examples written for this test)."""
    r = sluice.client()
    ns = "reword-e2e"
    r.execute_command("SEM.DEL", ns)
    r.execute_command("SEM.SET", ns, "Is it safe to swim after eating", "wait a little")
    reworded = "Is it secure to bathe after dining"
    score = float(r.execute_command("SEM.GET", ns, reworded, "MINSCORE", "0.3")[1])
    assert 0.6 <= score < 0.7, score  # under the default bar
    hit = r.execute_command("SEM.GET", ns, reworded, "WHY")
    assert hit[0] == b"wait a little" and hit[-1] == b"hit", hit
    # A MINSCORE the request sets is a floor: no rewordings under it.
    floor = r.execute_command("SEM.GET", ns, reworded, "MINSCORE", "0.7", "WHY")
    assert floor[0] is None and floor[-1] == b"below minscore 0.7", floor
    # Another question sharing a word, in the same band, which the verifier alone would let
    # through (its words differ too much for an edit): its words do not align, so a miss.
    other = "Is swimming good exercise after an injury"
    assert 0.6 <= float(r.execute_command("SEM.GET", ns, other, "MINSCORE", "0.3")[1]) < 0.7
    assert r.execute_command("SEM.GET", ns, other, "WHY")[-1] == b"below minscore 0.7"
    # A bad verdict on it: no longer answered under the bar.
    r.execute_command("SEM.FEEDBACK", ns, reworded, "bad")
    after = r.execute_command("SEM.GET", ns, reworded, "WHY")
    assert after[0] is None and after[-1].startswith(b"below minscore"), after
    r.execute_command("SEM.DEL", ns)


def test_semantic_entries_survive_a_restart(sluice):
    import signal
    r = sluice.client()
    r.execute_command("SEM.SET", "kb", "How do volcanoes form?", "Magma rises...", "SCOPE", "s1")
    r.execute_command("SEM.SET", "kb", "Best pasta recipe", "Boil water...", "PX", 100)
    r.execute_command("SEM.SET", "gone", "Explain quantum entanglement", "x")
    r.execute_command("SEM.DEL", "gone")
    r.execute_command("SEM.SET", "kb", "Why is the sky blue?", "Rayleigh scattering")
    assert r.execute_command("SEM.DEL", "kb", "Why is the sky blue?") == 1
    assert sluice.stop(signal.SIGTERM) == 0
    sluice.start()
    r = sluice.client()
    reply = r.execute_command("SEM.GET", "kb", "How are volcanoes formed?", "SCOPE", "s1")
    assert reply is not None and reply[0] == b"Magma rises..."
    assert r.execute_command("SEM.GET", "kb", "Best pasta recipe") is None  # expired while down
    assert r.execute_command("SEM.INFO", "gone") is None
    assert r.execute_command("SEM.GET", "kb", "Why is the sky blue?", "MINSCORE", 0.99) is None


def vec(*xs):
    import struct
    return struct.pack(f"<{len(xs)}f", *xs)


def test_feedback_tightens_an_entry_and_survives_a_restart(sluice):
    import signal
    r = sluice.client()
    assert r.execute_command("SEM.SET", "fb", "How do I reset my password?", "the answer", "VEC", vec(1, 0, 0)) == b"OK"
    asked = vec(0.8, 0.6, 0)
    assert r.execute_command("SEM.GET", "fb", "How can I reset my password?", "VEC", asked)[0] == b"the answer"
    prompt, score, threshold, good, bad, deleted = r.execute_command("SEM.FEEDBACK", "fb", "How can I reset my password?", "bad", "VEC", asked)
    assert prompt == b"How do I reset my password?" and abs(float(score) - 0.8) < 1e-4 and float(threshold) > 0.8 and (good, bad, deleted) == (0, 1, 0)
    assert r.execute_command("SEM.GET", "fb", "How can I reset my password?", "VEC", asked) is None
    assert sluice.stop(signal.SIGTERM) == 0
    sluice.start()
    r = sluice.client()
    # The verdict came back with the entry: still refused, a closer query still served.
    assert r.execute_command("SEM.GET", "fb", "How can I reset my password?", "VEC", asked) is None
    assert r.execute_command("SEM.GET", "fb", "How could I reset my password?", "VEC", vec(0.9, 0.43589, 0))[0] == b"the answer"
    # A new answer for the prompt starts over, and that too survives a restart.
    assert r.execute_command("SEM.SET", "fb", "How do I reset my password?", "a better answer", "VEC", vec(1, 0, 0)) == b"OK"
    assert sluice.stop(signal.SIGTERM) == 0
    sluice.start()
    assert sluice.client().execute_command("SEM.GET", "fb", "How can I reset my password?", "VEC", asked)[0] == b"a better answer"


def test_a_bad_verdict_on_the_stored_prompt_itself_deletes_the_entry(sluice):
    r = sluice.client()
    r.execute_command("SEM.SET", "fb2", "How do I reset my password?", "Use Forgot password.")
    reply = r.execute_command("SEM.FEEDBACK", "fb2", "How do I reset my password?", "bad")
    assert reply[0] == b"How do I reset my password?" and reply[5] == 1
    assert r.execute_command("SEM.GET", "fb2", "How do I reset my password?") is None
    assert as_dict(r.execute_command("SEM.INFO", "fb2"))[b"entries"] == 0
