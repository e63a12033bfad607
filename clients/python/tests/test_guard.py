"""The guarded call (`llm_call`), step by step, against a real Sluice."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, List, Optional

import pytest
from conftest import SluiceServer

import sluice
from sluice import Budget, Limit, Policy, Slot


def answer_for(prompt: str) -> str:
    return f"answer: {prompt}"


def guarded(sl: sluice.Sluice, prompt: str, policy: Policy, ns: str, upstream_calls: List[str], fail: Optional[Exception] = None) -> sluice.LLMCall:
    with sl.llm_call(model="m", prompt=prompt, namespace=ns, policy=policy, estimate_tokens=100) as call:
        if not call.hit:
            upstream_calls.append(prompt)
            if fail is not None:
                raise fail
            call.record(answer_for(prompt), prompt_tokens=30, completion_tokens=12)
    return call


def test_miss_then_exact_then_semantic(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    # Buckets that hardly refill (1 a minute), so what is left is exactly what was charged.
    policy = Policy(limit=Limit(1, 1, burst_requests=1000, burst_tokens=100_000), limit_key=name("lim"), breaker=name("cb"))
    calls: List[str] = []
    first = guarded(sl, "How do I reset my password?", policy, name("ns"), calls)
    assert not first.hit and first.source is None and first.answer == answer_for("How do I reset my password?")
    exact = guarded(sl, "How do I reset my password?", policy, name("ns"), calls)
    assert exact.hit and exact.source == "exact" and exact.answer == first.answer
    para = guarded(sl, "What's the way to reset my password?", policy, name("ns"), calls)
    assert para.hit and para.source == "semantic" and para.score is not None and para.answer == first.answer
    # The paraphrase's answer was stored under its own exact key too.
    again = guarded(sl, "What's the way to reset my password?", policy, name("ns"), calls)
    assert again.source == "exact"
    other_params = sl.llm_call(model="m", prompt="How do I reset my password?", namespace=name("ns"), policy=policy, params={"temperature": 1})
    with other_params as call:
        assert not call.hit  # another setting is another question, for both layers
        call.record("different")
    assert calls == ["How do I reset my password?"]
    peek = sl.limits.peek(name("lim"))
    # Settled at 42 real tokens; the last call recorded no counts and so kept its estimate (0).
    assert peek is not None and peek.remaining_tokens == 100_000 - 42 and peek.remaining_requests == 1000 - 2
    stats = sl.stats.snapshot()
    assert stats["exact_hits"] == 2 and stats["semantic_hits"] == 1 and stats["upstream_calls"] == 2
    saved = sl.server_stats()
    assert saved["tokens_saved"] >= 42  # the exact hit counted the stored TOKENS
    sl.close()


def test_failure_reports_to_breaker_and_serves_stale(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    breaker = name("cb")
    sl.breakers.config(breaker, min_calls=3, window=4, failure_rate=0.5, open_ms=60_000)
    policy = Policy(breaker=breaker, ttl_ms=100, stale_ms=60_000)
    calls: List[str] = []
    guarded(sl, "weather in Oslo", policy, name("ns"), calls)
    time.sleep(0.2)  # the answer expires; Sluice keeps it for STALE (--max-stale)
    call = guarded(sl, "weather in Oslo", policy, name("ns"), calls, fail=ConnectionError("upstream down"))
    assert call.hit and call.source == "stale" and call.answer == answer_for("weather in Oslo")
    assert sl.breakers.state(breaker).failures == 1
    with pytest.raises(ConnectionError):  # nothing stale for this one: the error goes to the caller
        guarded(sl, "weather in Rome", policy, name("ns"), calls, fail=ConnectionError("upstream down"))
    assert sl.breakers.state(breaker).state == "open"
    before = len(calls)
    with pytest.raises(sluice.BreakerOpen) as refused:
        guarded(sl, "weather in Rome", policy, name("ns"), calls)
    assert refused.value.retry_after_ms > 0 and len(calls) == before  # the upstream was spared
    stale = guarded(sl, "weather in Oslo", policy, name("ns"), calls)
    assert stale.source == "stale" and len(calls) == before
    assert sl.stats.breaker_refusals == 2 and sl.stats.stale_served == 2
    sl.close()


def test_client_errors_do_not_trip_the_breaker(server: SluiceServer, name: Callable[[str], str]) -> None:
    class BadRequest(Exception):
        status_code = 400

    sl = server.client()
    breaker = name("cb")
    sl.breakers.config(breaker, min_calls=2, window=4, failure_rate=0.5)
    for i in range(3):
        with pytest.raises(BadRequest):
            guarded(sl, f"bad {i}", Policy(breaker=breaker), name("ns"), [], fail=BadRequest())
    state = sl.breakers.state(breaker)
    assert state.state == "closed" and state.calls == 3 and state.failures == 0
    sl.close()


def test_limit_refusal_and_wait(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    key = name("lim")
    sl.limits.penalize(key, 400)
    calls: List[str] = []
    with pytest.raises(sluice.RateLimited) as refused:
        guarded(sl, "q1", Policy(limit=Limit(600, 0), limit_key=key, max_wait_s=0.05), name("ns"), calls)
    assert refused.value.retry_after_ms > 0 and calls == []
    started = time.monotonic()
    guarded(sl, "q1", Policy(limit=Limit(600, 0), limit_key=key, max_wait_s=5), name("ns"), calls)
    assert time.monotonic() - started >= 0.3 and calls == ["q1"]  # waited for the hold, then went
    assert sl.stats.limit_waits == 1 and sl.stats.limit_refusals == 1
    sl.close()


def test_upstream_429_holds_the_shared_limit(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    key = name("lim")
    policy = Policy(limit=Limit(600, 100_000), limit_key=key, max_wait_s=0.01)
    with pytest.raises(sluice.UpstreamRateLimited):
        guarded(sl, "q", policy, name("ns"), [], fail=sluice.UpstreamRateLimited(2.0))
    peek = sl.limits.peek(key)
    assert peek is not None and peek.remaining_requests == 0 and peek.retry_after_ms >= 1900
    with pytest.raises(sluice.RateLimited):
        guarded(sl, "another", policy, name("ns"), [])
    sl.close()


def test_penalize_inside_the_body_absorbs_the_429(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    key = name("lim")
    attempts = 0
    started = time.monotonic()
    with sl.llm_call(model="m", prompt="q", namespace=name("ns"), policy=Policy(limit=Limit(600, 0), limit_key=key), estimate_tokens=5) as call:
        while True:
            attempts += 1
            if attempts == 1:
                call.penalize(0.3)  # the first attempt was answered 429
                continue
            call.record("fine", total_tokens=7)
            break
    assert call.answer == "fine" and call.rate_limited == 1 and time.monotonic() - started >= 0.3
    assert sl.stats.absorbed_429s == 1 and sl.stats.upstream_429s == 1
    sl.close()


def test_concurrent_identical_prompts_make_one_upstream_call(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    calls: List[str] = []
    answers: List[Optional[str]] = [None] * 20
    barrier = threading.Barrier(20)
    ns = name("ns")

    def work(i: int) -> None:
        barrier.wait()
        with sl.llm_call(model="m", prompt="the same", namespace=ns) as call:
            if not call.hit:
                calls.append("x")
                time.sleep(0.3)
                call.record("one answer")
        answers[i] = call.answer

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert calls == ["x"] and answers == ["one answer"] * 20
    assert sl.stats.coalesced == 19
    sl.close()


def test_waiters_stop_waiting_when_the_holder_fails(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    ns = name("ns")
    policy = Policy(lease_ms=20_000, breaker=None)
    got_lease = threading.Event()
    waiter_result: List[object] = []

    def holder() -> None:
        with pytest.raises(RuntimeError):
            with sl.llm_call(model="m", prompt="p", namespace=ns, policy=policy):
                got_lease.set()
                time.sleep(0.3)
                raise RuntimeError("upstream failed")

    def waiter() -> None:
        got_lease.wait(5)
        started = time.monotonic()
        with sl.llm_call(model="m", prompt="p", namespace=ns, policy=policy) as call:
            waited = time.monotonic() - started
            assert not call.hit  # nobody stored an answer: this caller tries itself
            call.record("second try worked")
        waiter_result.append(waited)

    h = threading.Thread(target=holder)
    w = threading.Thread(target=waiter)
    h.start()
    w.start()
    h.join(10)
    w.join(10)
    assert len(waiter_result) == 1
    waited = waiter_result[0]
    assert isinstance(waited, float) and 0.2 < waited < 3.0  # not the 20 s lease
    assert sl.cache.get(sluice.keys.prompt_key(ns, "m", "p")).text == "second try worked"
    sl.close()


def test_slot_and_budget(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    slot_key = name("slots")
    budget = Budget(key=name("team"), budget=0.001)
    policy = Policy(slot=Slot(max_in_flight=1, priority=5, wait_ms=50, key=slot_key), budget=budget, breaker=None, price=sluice.Price(10.0, 30.0))
    holder = sl.slots.acquire(slot_key, 1)
    assert holder.granted and holder.slot_id
    with pytest.raises(sluice.SlotUnavailable):
        guarded(sl, "q", policy, name("ns"), [])
    sl.slots.release(slot_key, holder.slot_id)
    call = guarded(sl, "q", policy, name("ns"), [])  # 30 prompt + 12 completion tokens: 0.00066
    assert call.answer == answer_for("q")
    state = sl.budgets.get(budget.key)
    assert state is not None and state.spent == pytest.approx(0.00066)
    assert sl.slots.acquire(slot_key, 1).granted  # the guarded call gave its slot back
    guarded(sl, "q2", Policy(budget=budget, breaker=None, price=sluice.Price(10.0, 30.0)), name("ns"), [])
    with pytest.raises(sluice.BudgetExceeded):
        guarded(sl, "q3", Policy(budget=budget, breaker=None), name("ns"), [])
    sl.close()


async def test_async_guarded_call(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.async_client()
    ns = name("ns")
    calls: List[str] = []

    async def ask(prompt: str) -> Optional[str]:
        async with sl.llm_call(model="m", prompt=prompt, namespace=ns, policy=Policy(limit=Limit(600, 10_000), limit_key=name("lim"))) as call:
            if not call.hit:
                calls.append(prompt)
                await asyncio.sleep(0.2)
                call.record(answer_for(prompt), total_tokens=10)
        return call.answer

    answers = await asyncio.gather(*[ask("same prompt") for _ in range(30)])
    assert set(answers) == {answer_for("same prompt")} and calls == ["same prompt"]
    assert await ask("same prompt") == answer_for("same prompt")
    assert sl.stats.coalesced == 29 and sl.stats.exact_hits == 1
    await sl.aclose()


async def test_module_level_llm_call(server: SluiceServer, name: Callable[[str], str]) -> None:
    sluice.configure(server.url)
    ns = name("ns")
    with sluice.llm_call(model="m", prompt="hello", namespace=ns) as call:
        assert not call.hit
        call.record("hi")
    async with sluice.llm_call(model="m", prompt="hello", namespace=ns) as acall:
        assert acall.hit and acall.answer == "hi"
    sluice.configure()


def test_waiting_for_a_stuck_lease_is_bounded(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    ns = name("ns")
    stuck = sl.cache.get(sluice.keys.prompt_key(ns, "m", "p"), lease_ms=60_000)  # a holder that hangs
    assert stuck.lease is not None
    started = time.monotonic()
    with sl.llm_call(model="m", prompt="p", namespace=ns, policy=Policy(max_wait_s=0.4, breaker=None)) as call:
        assert not call.hit
        call.record("answered anyway")
    assert 0.3 <= time.monotonic() - started < 3.0
    assert sl.cache.get(sluice.keys.prompt_key(ns, "m", "p")).text == "answered anyway"  # a plain write ends the stuck lease
    sl.close()
