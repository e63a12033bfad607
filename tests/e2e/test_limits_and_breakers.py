"""RL.* and CB.* through redis-py over real sockets."""
import pytest
import redis

from conftest import as_dict, run_together


def test_fifty_connections_on_one_key_get_exactly_the_capacity(sluice):
    # Capacity 100 (BURST), refill 1 request per minute: the run ends long before a refill,
    # so exactly 100 of the 500 attempts may pass.
    clients = [sluice.client() for _ in range(50)]
    for c in clients:
        c.ping()

    def takes(i):
        return sum(clients[i].execute_command("RL.TAKE", "shared-key", 1, 0, "BURST", 100, 0)[0] == 1 for _ in range(10))

    counts = run_together(50, takes)
    assert sum(counts) == 100
    stats = as_dict(sluice.client().execute_command("STATS"))
    assert int(stats[b"rl_allowed"]) == 100 and int(stats[b"rl_denied"]) == 400


def test_reserve_settle_roundtrip(sluice, protocol):
    r = sluice.client(protocol=protocol)
    # 100 tokens a minute: one token flows back every 600 ms, so the few ms between the calls
    # cannot change the figures (at 10,000 a minute a slow machine saw 8501).
    allowed, rid, retry = r.execute_command("RL.RESERVE", "tenant:7", 60, 100, 40)
    assert allowed == 1 and retry == 0
    assert r.execute_command("RL.SETTLE", rid, 15) == [-25, 85]
    with pytest.raises(redis.ResponseError, match="unknown or expired reservation"):
        r.execute_command("RL.SETTLE", rid, 15)
    remaining_requests, remaining_tokens, *_ = r.execute_command("RL.PEEK", "tenant:7")
    assert remaining_requests == 59 and remaining_tokens >= 85


def test_breaker_opens_for_everyone(sluice, protocol):
    r = sluice.client(protocol=protocol)
    r.execute_command("CB.CONFIG", "gpt", "MIN-CALLS", 3, "OPEN-MS", 60000)
    for _ in range(3):
        allowed, state, ticket, _ = r.execute_command("CB.ALLOW", "gpt")
        assert allowed == 1
        r.execute_command("CB.REPORT", "gpt", ticket, "fail", 100)
    other = sluice.client(protocol=protocol)
    allowed, state, ticket, retry = other.execute_command("CB.ALLOW", "gpt")
    assert (allowed, state, ticket) == (0, b"open", None) and 0 < retry <= 60000
    assert as_dict(other.execute_command("CB.STATE", "gpt"))[b"state"] == b"open"
