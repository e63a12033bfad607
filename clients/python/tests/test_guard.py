"""The guarded call (`llm_call`), step by step, against a real Sluice."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, List, Optional

import pytest
from conftest import SluiceServer, wait_until

import sluice
from sluice import Budget, Limit, Policy, Slot
from sluice.keys import prompt_scope


def answer_for(prompt: str) -> str:
    return f"answer: {prompt}"


def stored(sl: sluice.Sluice, ns: str, prompt: str, model: str = "m") -> Optional[str]:
    """What Sluice answers now for llm_call(model, prompt) without params."""
    return sl.llm.get(ns, prompt, scope=prompt_scope(model)).text


def guarded(sl: sluice.Sluice, prompt: str, policy: Policy, ns: str, upstream_calls: List[str], fail: Optional[BaseException] = None) -> sluice.LLMCall:
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
    guarded(sl, "weather in Paris", policy, name("ns"), calls)
    # The answers expire; Sluice keeps them for STALE (--max-stale).
    wait_until(lambda: stored(sl, name("ns"), "weather in Oslo") is None and stored(sl, name("ns"), "weather in Paris") is None)
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
    stale = guarded(sl, "weather in Paris", policy, name("ns"), calls)  # refused by the breaker: stale
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
    # Waiters get the answer through the lease; a thread that only looked after it was stored
    # gets an exact hit. Either way, one upstream call for twenty.
    assert sl.stats.coalesced + sl.stats.exact_hits == 19
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
    assert stored(sl, ns, "p") == "second try worked"
    assert sl.stats.lease_takeovers == 1
    sl.close()


@pytest.mark.parametrize("failure", ["upstream", "cancelled"])
def test_when_the_holder_fails_one_waiter_takes_over_not_all(server: SluiceServer, name: Callable[[str], str], failure: str) -> None:
    """Ten callers wait for a holder that fails: one of them (elected) asks the upstream, the
    other nine get its answer — no stampede."""
    sl = server.client()
    ns = name("ns")
    policy = Policy(breaker=None)
    calls: List[str] = []
    lock = threading.Lock()
    got_lease = threading.Event()
    results: List[Optional[str]] = []

    def holder() -> None:
        with pytest.raises((ConnectionError, KeyboardInterrupt)):
            with sl.llm_call(model="m", prompt="Explain leases.", namespace=ns, policy=policy):
                got_lease.set()
                time.sleep(0.3)
                raise ConnectionError("upstream down") if failure == "upstream" else KeyboardInterrupt()

    def waiter() -> None:
        got_lease.wait(5)
        with sl.llm_call(model="m", prompt="Explain leases.", namespace=ns, policy=policy) as call:
            if not call.hit:
                with lock:
                    calls.append("successor")
                time.sleep(0.2)
                call.record("a lease is a promise")
        results.append(call.answer)

    threads = [threading.Thread(target=holder)] + [threading.Thread(target=waiter) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert calls == ["successor"]
    assert results == ["a lease is a promise"] * 10
    assert sl.stats.lease_takeovers == 1 and sl.stats.coalesced + sl.stats.exact_hits == 9
    sl.close()


def test_waiters_of_a_failed_call_are_served_stale(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    ns = name("ns")
    policy = Policy(breaker=None, ttl_ms=100, stale_ms=60_000)
    guarded(sl, "weather in Lima", policy, ns, [])
    wait_until(lambda: stored(sl, ns, "weather in Lima") is None, what="the answer expiring")
    got_lease = threading.Event()
    waiter: List[sluice.LLMCall] = []

    def wait() -> None:
        got_lease.wait(5)
        waiter.append(guarded(sl, "weather in Lima", policy, ns, ["waiter asked"]))

    t = threading.Thread(target=wait)
    t.start()
    with sl.llm_call(model="m", prompt="weather in Lima", namespace=ns, policy=policy) as call:
        assert not call.hit
        got_lease.set()
        time.sleep(0.3)
        raise TimeoutError("upstream timed out")
    t.join(10)
    assert call.source == "stale"  # the holder's failure was answered stale...
    assert len(waiter) == 1 and waiter[0].source == "stale"  # ...and so was its waiter's, without an upstream call
    assert waiter[0].answer == answer_for("weather in Lima")
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
    assert sl.stats.coalesced + sl.stats.exact_hits == 30 and sl.stats.upstream_calls == 1
    await sl.aclose()


async def test_module_level_llm_call(server: SluiceServer, name: Callable[[str], str]) -> None:
    sluice.configure(server.url)
    ns = name("ns")
    # A blocking `with` inside a running event loop would block the loop: it works, but warns.
    with pytest.warns(RuntimeWarning, match="event loop"):
        with sluice.llm_call(model="m", prompt="hello", namespace=ns) as call:
            assert not call.hit
            call.record("hi")
    async with sluice.llm_call(model="m", prompt="hello", namespace=ns) as acall:
        assert acall.hit and acall.answer == "hi"
    sluice.configure()


def test_waiting_for_a_stuck_lease_is_bounded(server: SluiceServer, name: Callable[[str], str]) -> None:
    sl = server.client()
    ns = name("ns")
    stuck = sl.llm.get(ns, "p", scope=prompt_scope("m"), lease_ms=60_000)  # a holder that hangs
    assert stuck.lease is not None
    calls: List[str] = []
    started = time.monotonic()
    with pytest.raises(sluice.LeaseWaitTimeout):
        guarded(sl, "p", Policy(max_wait_s=0.4, breaker=None), ns, calls)
    assert 0.3 <= time.monotonic() - started < 3.0
    assert calls == [] and sl.stats.lease_timeouts == 1  # the upstream is not asked behind the lease's back
    # With an old answer to give, the waiter gives that instead.
    sl.llm.set(ns, "q", "old answer", px=50, scope=prompt_scope("m"))
    wait_until(lambda: stored(sl, ns, "q") is None, what="the answer expiring")
    assert sl.llm.get(ns, "q", scope=prompt_scope("m"), lease_ms=60_000).lease is not None
    call = guarded(sl, "q", Policy(max_wait_s=0.3, breaker=None, stale_ms=60_000), ns, calls)
    assert call.source == "stale" and call.answer == "old answer" and calls == []
    sl.close()


def test_429_without_a_limit_is_shared(server: SluiceServer, name: Callable[[str], str]) -> None:
    """The default policy has no limit of its own, yet a 429 still holds every caller back."""
    sl = server.client()
    key = name("lim")
    policy = Policy(limit_key=key, breaker=None, max_wait_s=5)
    with pytest.raises(sluice.UpstreamRateLimited):
        guarded(sl, "q1", policy, name("ns"), [], fail=sluice.UpstreamRateLimited(0.5))
    peek = sl.limits.peek(key)
    assert peek is not None and peek.retry_after_ms > 300
    with pytest.raises(sluice.RateLimited):
        guarded(sl, "q2", Policy(limit_key=key, breaker=None, max_wait_s=0.05), name("ns"), [])
    started = time.monotonic()
    guarded(sl, "q3", policy, name("ns"), [])
    assert time.monotonic() - started >= 0.25  # waited for the hold
    # A Retry-After beyond max_wait_s: the hold is shared in full, and this call gives up at once.
    with sl.llm_call(model="m", prompt="q4", namespace=name("ns"), policy=Policy(limit_key=key, breaker=None, max_wait_s=1)) as call:
        with pytest.raises(sluice.RateLimited):
            call.penalize(10**9)  # clamped to RL.PENALIZE's 24 h
    peek = sl.limits.peek(key)
    assert peek is not None and peek.retry_after_ms > 86_000_000
    sl.close()
