"""CACHE.GET key STALE ms (stale-if-error) over real sockets, in both modes: an entry expired
less than ms ago answers, flagged `stale`, while --max-stale keeps it; every other command sees
it gone on time; a DEL ends it; the embedded file keeps it across a restart."""
import time

import redis

from conftest import as_dict, wait_for


def cache_get(client, key, *options):
    return client.execute_command("CACHE.GET", key, *options)


def test_embedded_stale_window_and_ordinary_reads(make_sluice):
    node = make_sluice("--max-stale", "60000").start()
    c = node.client()
    assert c.set("answer", "42", px=150)
    assert cache_get(c, "answer", "STALE", 1000)[1] == b"l1"  # live: an ordinary hit
    time.sleep(0.3)
    # Expired: GET, EXISTS, TTL and NX see it gone ...
    assert c.get("answer") is None
    assert c.exists("answer") == 0 and c.pttl("answer") == -2
    value, layer, age, lease = cache_get(c, "answer", "STALE", 5000)
    assert (value, layer, lease) == (b"42", b"stale", None) and age >= 300
    # ... a window shorter than its age since expiry finds nothing, and a lease may be taken.
    value, layer, _, lease = cache_get(c, "answer", "STALE", 50, "LEASE", 1000)
    assert value is None and layer is None and lease is not None
    assert as_dict(c.execute_command("STATS"))[b"stale_hits"] == 1
    # Kept in the file too: after a restart it is still there for stale reads.
    node.stop()
    node.start()
    c = node.client()
    assert c.get("answer") is None
    assert cache_get(c, "answer", "STALE", 60000)[:2] == [b"42", b"stale"]
    # A new write replaces it; a DEL ends it.
    assert c.set("answer", "43", px=100) and c.delete("answer") == 1
    assert cache_get(c, "answer", "STALE", 60000)[0] is None


def test_without_max_stale_nothing_is_kept(make_sluice):
    c = make_sluice().start().client()
    c.set("k", "v", px=100)
    time.sleep(0.25)
    assert cache_get(c, "k", "STALE", 60000) == [None, None, None, None]
    for bad in (-1, 2592000001):
        try:
            c.execute_command("CACHE.GET", "k", "STALE", bad)
            raise AssertionError("accepted")
        except redis.ResponseError as e:
            assert "STALE must be between 0 and 2592000000 ms" in str(e)


def test_shared_mode_stale_copy_is_seen_by_every_instance(make_sluice, redis_server):
    a = make_sluice("--redis", redis_server.url, "--max-stale", "60000").start().client()
    b = make_sluice("--redis", redis_server.url, "--max-stale", "60000").start().client()
    assert a.set("shared", "v1", px=150)
    time.sleep(0.3)
    assert b.get("shared") is None and b.exists("shared") == 0
    assert b.set("shared", "x", nx=True) is True  # NX sees the main key gone, stale copy or not
    b.delete("shared")
    # Written again, expired again: B never had it in L1; the Redis copy answers.
    assert a.set("shared", "v2", px=150)
    time.sleep(0.3)
    value, layer, _, _ = cache_get(b, "shared", "STALE", 10000)
    assert (value, layer) == (b"v2", b"stale")
    assert cache_get(b, "shared", "STALE", 10)[0] is None
    # A DEL through A ends it for B too.
    a.delete("shared")
    assert wait_for(lambda: cache_get(b, "shared", "STALE", 10000)[0] is None, 2) is not None
