"""Every way out of a guarded call gives back what it took: afterwards the server holds no open
reservation and no slot (STATS `rl_reservations_open`, `rl_slots_held`), the breaker is not left
stuck, and the question's lease does not make the next caller wait. On a Sluice of this module's
own, so that what it holds is only what these tests left behind."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest
from conftest import SluiceServer, wait_until

import sluice
import sluice._flow
from sluice import Limit, Policy, Slot


class BadRequest(Exception):
    status_code = 400


def held(sl: sluice.Sluice) -> Tuple[int, int]:
    stats = sl.server_stats()
    return int(stats["rl_reservations_open"]), int(stats["rl_slots_held"])


def assert_nothing_held(sl: sluice.Sluice) -> None:
    wait_until(lambda: held(sl) == (0, 0), what="no open reservation and no held slot")


def policy(name: Callable[[str], str], **changes: Any) -> Policy:
    settings: dict[str, Any] = dict(
        limit=Limit(6000, 10_000_000),
        limit_key=name("lim"),
        slot=Slot(max_in_flight=1, wait_ms=2000, key=name("slots")),
        breaker=name("cb"),
    )
    settings.update(changes)
    return Policy(**settings)


@pytest.fixture
def sl(quiet_server: SluiceServer) -> Iterator[sluice.Sluice]:
    client = quiet_server.client()
    assert_nothing_held(client)
    yield client
    client.close()


def next_caller_is_not_kept_waiting(sl: sluice.Sluice, p: Policy, ns: str, prompt: str) -> None:
    """The question's lease was fulfilled or handed over: a new caller gets an answer at once."""
    started = time.monotonic()
    with sl.llm_call(model="m", prompt=prompt, namespace=ns, policy=p, estimate_tokens=10) as call:
        if not call.hit:
            call.record("fresh", total_tokens=3)
    assert time.monotonic() - started < 2.0


EXITS = {
    # name: (what the body does, the exception the caller sees, the breaker's calls/failures after)
    "exception after record": ("record-raise", ValueError, (1, 0)),
    "exception before record": ("raise", ValueError, (0, 0)),
    "upstream failure": ("fail", ConnectionError, (1, 1)),
    "upstream 429": ("429", sluice.UpstreamRateLimited, (1, 0)),
    "bad request": ("400", BadRequest, (1, 0)),
    "no record": ("nothing", None, (0, 0)),
    "interrupt in the body": ("interrupt", KeyboardInterrupt, (0, 0)),
}


@pytest.mark.parametrize("exit_path", list(EXITS))
def test_every_exit_gives_everything_back(
    sl: sluice.Sluice, name: Callable[[str], str], exit_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    action, raised, (calls, failures) = EXITS[exit_path]
    p = policy(name)
    ns = name("ns")

    def body(call: sluice.LLMCall) -> None:
        if action == "record-raise":
            call.record("the answer", total_tokens=5)
            raise ValueError("the caller's own bug, after the upstream answered")
        if action == "raise":
            raise ValueError("the caller's own bug")
        if action == "fail":
            raise ConnectionError("upstream down")
        if action == "429":
            raise sluice.UpstreamRateLimited(0.01)
        if action == "400":
            raise BadRequest()
        if action == "interrupt":
            raise KeyboardInterrupt()

    caplog.set_level(logging.WARNING, logger="sluice")
    try:
        with sl.llm_call(model="m", prompt="the question", namespace=ns, policy=p, estimate_tokens=100) as call:
            assert not call.hit
            body(call)
    except BaseException as exc:  # noqa: B036 - KeyboardInterrupt is one of the cases
        assert raised is not None and isinstance(exc, raised), exc
    else:
        assert raised is None
    assert_nothing_held(sl)
    state = sl.breakers.state(p.breaker or "")
    assert (state.calls, state.failures) == (calls, failures) and state.state == "closed"
    if calls == 0:
        assert "no outcome to report" in caplog.text  # an unreported ticket is logged, not silent
    if action == "record-raise":
        # The body's exception did not lose the answer: stored, charged at its real count.
        assert sl.llm.get(ns, "the question", scope=sluice.keys.prompt_scope("m")).text == "the answer"
    next_caller_is_not_kept_waiting(sl, p, ns, "the question")
    assert_nothing_held(sl)


def test_refusals_take_nothing_and_never_hold_a_probe(sl: sluice.Sluice, name: Callable[[str], str]) -> None:
    p = policy(name, slot=Slot(max_in_flight=1, wait_ms=50, key=name("slots")))
    ns = name("ns")
    assert p.breaker is not None and p.slot is not None
    # A half-open breaker with one probe to give.
    sl.breakers.config(p.breaker, window=1, min_calls=1, failure_rate=1.0, open_ms=100, probes=1)
    ticket = sl.breakers.allow(p.breaker)
    assert ticket.ticket is not None
    sl.breakers.report(p.breaker, ticket.ticket, False)
    assert sl.breakers.state(p.breaker).state == "open"
    with pytest.raises(sluice.BreakerOpen):  # refused before anything is taken
        with sl.llm_call(model="m", prompt="q", namespace=ns, policy=p):
            pass
    assert_nothing_held(sl)
    # When OPEN-MS is over, the next CB.ALLOW is the probe.
    wait_until(lambda: sl.breakers.state(p.breaker or "").next_transition_ms == 0, what="OPEN-MS passing")
    other = sl.slots.acquire(p.slot.key or "", 1, lease_ms=60_000)
    assert other.granted and other.slot_id is not None
    with pytest.raises(sluice.SlotUnavailable):
        with sl.llm_call(model="m", prompt="q", namespace=ns, policy=p):
            pass
    sl.slots.release(p.slot.key or "", other.slot_id)
    assert_nothing_held(sl)
    assert sl.breakers.state(p.breaker).probes_issued == 0  # the slot's refusal took no probe
    # The limit's refusal neither.
    sl.limits.penalize(p.limit_key, 5000)
    with pytest.raises(sluice.RateLimited):
        with sl.llm_call(model="m", prompt="q", namespace=ns, policy=dataclass_replace(p, max_wait_s=0.1)):
            pass
    assert_nothing_held(sl)
    assert sl.breakers.state(p.breaker).probes_issued == 0
    # So the probe is still there for the next call, which closes the breaker.
    next_caller_is_not_kept_waiting(sl, dataclass_replace(p, limit_key=name("lim2")), ns, "q")
    assert sl.breakers.state(p.breaker).state == "closed"
    assert_nothing_held(sl)


def dataclass_replace(p: Policy, **changes: Any) -> Policy:
    import dataclasses

    return dataclasses.replace(p, **changes)


def test_an_interrupt_on_the_way_in_gives_back_reservation_and_lease(
    sl: sluice.Sluice, name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the call waits for its slot: the reservation is settled and the lease handed
    over, so nothing stays charged and the next caller is not kept waiting."""
    p = policy(name)
    ns = name("ns")
    real = sluice._flow.execute

    def interrupted(client: Any, trip: sluice._flow.RoundTrip) -> List[Any]:
        if trip.cmds[0].args[0] == "RL.ACQUIRE":
            raise KeyboardInterrupt()
        return real(client, trip)

    monkeypatch.setattr(sluice._flow, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with sl.llm_call(model="m", prompt="interrupted", namespace=ns, policy=p, estimate_tokens=100):
            raise AssertionError("not entered")
    monkeypatch.setattr(sluice._flow, "execute", real)
    assert_nothing_held(sl)
    next_caller_is_not_kept_waiting(sl, p, ns, "interrupted")


@pytest.mark.parametrize("where", ["slot wait", "limit wait", "lease wait", "body"])
async def test_a_cancellation_gives_everything_back(quiet_server: SluiceServer, name: Callable[[str], str], where: str) -> None:
    sl = quiet_server.client()
    asl = quiet_server.async_client()
    p = policy(name)
    assert p.slot is not None and p.breaker is not None
    ns = name("ns")
    entered = asyncio.Event()
    other_slot: Optional[str] = None
    if where == "slot wait":
        grant = sl.slots.acquire(p.slot.key or "", 1, lease_ms=60_000)  # the call will wait for it
        other_slot = grant.slot_id
    elif where == "limit wait":
        sl.limits.penalize(p.limit_key, 3000)
    elif where == "lease wait":
        assert sl.llm.get(ns, "cancelled", scope=sluice.keys.prompt_scope("m"), lease_ms=60_000).lease is not None

    async def call() -> None:
        async with asl.llm_call(model="m", prompt="cancelled", namespace=ns, policy=p, estimate_tokens=100) as c:
            entered.set()
            assert not c.hit
            await asyncio.sleep(10)  # the upstream, slow

    task = asyncio.ensure_future(call())
    if where == "body":
        await asyncio.wait_for(entered.wait(), 5)
    else:
        await asyncio.sleep(0.3)
        assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if other_slot is not None:
        sl.slots.release(p.slot.key or "", other_slot)
    assert_nothing_held(sl)
    state = sl.breakers.state(p.breaker)
    assert state.calls == 0 and state.state == "closed"  # a cancellation is no outcome
    if where != "lease wait":
        # This call held the lease: it was handed over, so the next caller goes at once.
        await asyncio.to_thread(next_caller_is_not_kept_waiting, sl, dataclass_replace(p, limit_key=name("lim2")), ns, "cancelled")
    await asl.aclose()
    sl.close()
