"""The typed wrappers of every command group against a real Sluice, over RESP2 and RESP3."""

from __future__ import annotations

import time
from typing import Callable

import pytest
from conftest import SluiceServer, wait_until

import sluice
from sluice import Limit


def test_cache_lease_cycle_and_savings(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("k")
    first = sl.cache.get(key, lease_ms=5000)
    assert not first.hit and first.lease is not None and first.layer is None
    second = sl.cache.get(key, lease_ms=5000)
    assert not second.hit and second.lease is None  # someone else computes it
    assert sl.cache.set(key, "the answer", px=60_000, tokens=812, cost=0.0041, tag="test", lease=first.lease)
    hit = sl.cache.get(key)
    assert hit.hit and hit.text == "the answer" and hit.layer in ("l1", "l2") and hit.age_ms is not None
    assert 0 < sl.cache.pttl(key) <= 60_000
    assert sl.cache.exists(key, key) == 2
    assert sl.cache.get_value(key) == b"the answer"
    assert sl.cache.delete(key) == 1
    assert not sl.cache.get(key).hit


def test_lease_token_of_someone_else_is_refused_with_the_servers_message(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("k")
    mine = sl.cache.get(key, lease_ms=1)
    assert mine.lease is not None
    time.sleep(0.02)
    theirs = sl.cache.get(key, lease_ms=10_000)
    assert theirs.lease is not None
    with pytest.raises(sluice.CommandError, match="lease token is not the current lease on this key"):
        sl.cache.set(key, "late", lease=mine.lease)


def test_stale_answer_after_expiry(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("weather")
    sl.cache.set(key, "sunny", px=50)
    wait_until(lambda: not sl.cache.get(key).hit, what="the entry expiring")
    stale = sl.cache.get(key, stale_ms=60_000)
    assert stale.stale and stale.text == "sunny"


def test_llm_get_and_set(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    ns = name("faq")
    miss = sl.llm.get(ns, "What is the capital of Peru?", scope="s1", lease_ms=5000, why=True)
    assert not miss.hit and miss.layer == "miss" and miss.lease is not None and miss.why is not None
    assert sl.llm.get(ns, "What is the capital of Peru?", scope="s1", lease_ms=5000).lease is None  # one lease per question
    with pytest.raises(sluice.CommandError, match="lease token is not the current lease"):
        sl.llm.set(ns, "What is the capital of Peru?", "Lima", scope="s1", lease="123")
    assert sl.llm.set(ns, "What is the capital of Peru?", "Lima", scope="s1", px=60_000, tokens=9, cost=0.001, tag="test", lease=miss.lease)
    exact = sl.llm.get(ns, "What is the capital of Peru?", scope="s1")
    assert exact.text == "Lima" and exact.layer in ("l1", "l2") and exact.score == 1.0 and exact.age_ms is not None
    para = sl.llm.get(ns, "Which city is the capital of Peru?", scope="s1")
    assert para.layer == "semantic" and para.text == "Lima" and para.matched_prompt == "What is the capital of Peru?"
    assert sl.llm.get(ns, "Which city is the capital of Peru?", scope="s1").layer == "l1"  # written back
    assert not sl.llm.get(ns, "What is the capital of Peru?", scope="s2").hit  # scopes never mix
    # The client computes the server's exact key (sluice.Question.key): the entry is where it says.
    key = sluice.Question(namespace=ns, prompt="What is the capital of Peru?", scope="s1").key
    assert key == f"llm:{len(ns)}:{ns}:2:s1:What is the capital of Peru?" and sl.cache.exists(key) == 1


def test_semantic_layer(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    ns = name("faq")
    assert sl.semantic.set(ns, "How do I reset my password?", "Use 'Forgot password'.", scope="m1", tokens=40)
    match = sl.semantic.get(ns, "What's the way to reset my password?", scope="m1")
    assert match is not None and match.text == "Use 'Forgot password'." and match.score is not None and match.score > 0.7
    assert match.prompt == "How do I reset my password?"
    assert sl.semantic.get(ns, "What's the way to reset my password?", scope="other") is None
    why = sl.semantic.get(ns, "What's the way to reset my password?", scope="other", why=True)
    assert why is not None and not why.hit and why.why == "no entry in this scope"
    verdict = sl.semantic.feedback(ns, "What's the way to reset my password?", "bad", scope="m1")
    assert verdict is not None and verdict.bad == 1 and verdict.threshold > verdict.score
    assert sl.semantic.get(ns, "What's the way to reset my password?", scope="m1") is None
    info = sl.semantic.info(ns)
    assert info is not None and info.entries == 1 and info.embedder and info.dimension == 128
    config = sl.semantic.config(ns, min_score=0.8)
    assert config.min_score == pytest.approx(0.8)
    assert sl.semantic.delete(ns) == 1
    assert sl.semantic.info(name("never")) is None


def test_rate_limits(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("tenant")
    take = sl.limits.take(key, Limit(60, 90_000), tokens=1200)
    assert take.allowed and take.remaining_requests == 59 and take.remaining_tokens == 88_800
    r = sl.limits.reserve(key, Limit(60, 90_000), 4000)
    assert r.allowed and r.id
    settled = sl.limits.settle(r.id, 1500)
    assert settled.difference == -2500
    peek = sl.limits.peek(key)
    assert peek is not None and peek.rpm == 60 and peek.tpm == 90_000
    with pytest.raises(sluice.CommandError, match="unknown or expired reservation"):
        sl.limits.settle(r.id, 1)
    held = sl.limits.penalize(key, 2000)
    assert held.remaining_requests == 0 and held.retry_after_ms >= 2000
    refused = sl.limits.reserve(key, Limit(60, 90_000), 10)
    assert not refused.allowed and refused.id is None and refused.retry_after_ms >= 1900
    synced = sl.limits.sync(name("other"), 5, -1, 0, Limit(60, 0))
    assert synced is not None and synced.remaining_requests == 5
    assert sl.limits.sync(name("nobucket"), 5, -1, 0) is None
    assert sl.limits.peek(name("nothing")) is None
    by_policy = sl.limits.take(name("p"), "test-policy", tokens=10)
    assert by_policy.allowed and by_policy.remaining_tokens == 1_000_000 - 10
    with pytest.raises(sluice.CommandError, match="no rate-limit policy named"):
        sl.limits.take(key, "no-such-policy")
    with pytest.raises(sluice.CommandError, match="rpm must be between"):
        sl.limits.take(key, Limit(-1, 0))


def test_slots(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("slots")
    a = sl.slots.acquire(key, 1, priority=10, wait_ms=100, lease_ms=5000)
    assert a.granted and a.slot_id
    b = sl.slots.acquire(key, 1)
    assert not b.granted and b.slot_id is None and b.queue_position >= 0
    assert sl.slots.release(key, a.slot_id)
    assert not sl.slots.release(key, a.slot_id)
    assert sl.slots.acquire(key, 1).granted


def test_budgets(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    key = name("team")
    spend = sl.budgets.spend(key, 0.25, 1.0, period="day")
    assert spend.allowed and spend.remaining == pytest.approx(0.75) and not spend.near
    state = sl.budgets.get(key)
    assert state is not None and state.spent == pytest.approx(0.25) and state.budget == pytest.approx(1.0) and state.period == "day"
    assert not sl.budgets.spend(key, 0.8, 1.0).allowed
    assert sl.budgets.spend(key, 0.1, "test-budget").allowed
    assert sl.budgets.get(name("none")) is None


def test_breakers(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    b = name("upstream")
    policy = sl.breakers.config(b, min_calls=2, window=4, open_ms=60_000, failure_rate=0.5)
    assert policy.min_calls == 2 and policy.window == 4 and policy.failure_rate == pytest.approx(0.5)
    for _ in range(2):
        t = sl.breakers.allow(b)
        assert t.allowed and t.ticket
        report = sl.breakers.report(b, t.ticket, False, 120)
        assert report.counted
    assert report.state == "open"
    refused = sl.breakers.allow(b)
    assert not refused.allowed and refused.state == "open" and refused.ticket is None and refused.retry_after_ms > 0
    state = sl.breakers.state(b)
    assert state.state == "open" and state.forced is None and state.generation >= 2
    assert sl.breakers.force(b, "closed")
    assert sl.breakers.state(b).forced == "closed"
    assert sl.breakers.allow(b).allowed
    with pytest.raises(sluice.CommandError, match="ticket is not valid"):
        sl.breakers.report(b, "not-a-ticket", True)


def test_server_stats_and_ping(sl: sluice.Sluice) -> None:
    assert sl.ping()
    stats = sl.server_stats()
    assert isinstance(stats["l1_hits"], int) and "tokens_saved" in stats


async def test_async_groups(server: SluiceServer, name: Callable[[str], str]) -> None:
    a = server.async_client()
    try:
        key = name("k")
        lease = await a.cache.get(key, lease_ms=5000)
        assert lease.lease is not None
        assert await a.cache.set(key, "v", lease=lease.lease)
        assert (await a.cache.get(key)).text == "v"
        t = await a.breakers.allow(name("b"))
        assert t.allowed
        r = await a.limits.reserve(name("l"), Limit(60, 1000), 10)
        assert r.allowed and r.id
        assert (await a.limits.settle(r.id, 10)).difference == 0
        with pytest.raises(sluice.CommandError, match="unknown or expired reservation"):
            await a.limits.settle(r.id, 1)
    finally:
        await a.aclose()
