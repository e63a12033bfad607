"""The guarded LLM call: lookup and lease on the way in, then the budget, the limit, the slot and
— last — the breaker ticket; store, settle, report and release on the way out. Written once as
flows (see _flow) and wrapped by `LLMCall` (with) and `AsyncLLMCall` (async with).

Whatever ends a call — an answer, an exception of the body, a refusal, an interrupt or a
cancellation at any point — everything it took is given back: the reservation is settled, the
slot released, the breaker ticket reported (or, with no outcome to report, dropped with a
warning) and the lease either fulfilled or handed over (see `_wait`)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
import warnings
from dataclasses import dataclass
from types import TracebackType
from typing import Any, List, Mapping, Optional, Set, Type

import redis
import redis.asyncio

from . import _commands as c
from ._flow import Cmd, Flow, arun, batch, one, run, sleep
from ._lookup import AnswerStore, Found, Question
from .errors import (
    BreakerOpen,
    BudgetExceeded,
    LeaseWaitTimeout,
    RateLimited,
    Refused,
    SlotUnavailable,
    SluiceError,
    UpstreamRateLimited,
)
from .types import BreakerState, CallStats, Peek, Policy

log = logging.getLogger("sluice")

_DEFAULT_RETRY_AFTER_S = 1.0
_MAX_PENALTY_MS = 86_400_000  # RL.PENALIZE's bound

# Exceptions (by class name, anywhere in their MRO) that mean the upstream could not be reached
# or did not answer in time: httpx's, openai's, requests', aiohttp's.
_UPSTREAM_FAILURE_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "TimeoutException",
        "TransportError",
        "Timeout",
        "TimeoutError",
        "ConnectionError",
        "ClientConnectionError",
        "ServerTimeoutError",
    }
)


def is_upstream_failure(exc: BaseException) -> bool:
    """The default `Policy.upstream_failure`: an HTTP status of 500 or more, or 408; a timeout;
    a connection error. Only these count against the breaker and allow a stale answer — any
    other exception of the body is the caller's own (a 4xx: the request was wrong)."""
    status = _status_of(exc)
    if status is not None:
        return status >= 500 or status == 408
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return any(cls.__name__ in _UPSTREAM_FAILURE_NAMES for cls in type(exc).__mro__)


@dataclass(frozen=True)
class Plan:
    """One call's question and the policy resolved for its model."""

    question: Question
    model: str
    policy: Policy
    estimate_tokens: int

    def named(self, template: str) -> str:
        return template.replace("{model}", self.model)


class Guard:
    def __init__(self, store: AnswerStore, stats: CallStats, plan: Plan) -> None:
        self.store = store
        self.stats = stats
        self.plan = plan
        self.answer: Optional[bytes] = None
        self.source: Optional[str] = None
        self.score: Optional[float] = None
        self.lease: Optional[str] = None  # this call's lease token: it computes the answer
        self.successor: Optional[str] = None  # or its id, when it took over from a caller that gave up
        self.lease_at = 0.0
        self.ticket: Optional[str] = None
        self.reservation: Optional[str] = None
        self.slot: Optional[str] = None
        self.started: Optional[float] = None
        self.recorded: Optional[bytes] = None
        self.tokens: Optional[int] = None
        self.cost: Optional[float] = None
        self.rate_limited = 0
        self.entered = False

    # ------------------------------------------------------------------ way in

    def enter(self) -> Flow[None]:
        if self.entered:
            raise RuntimeError("a guarded call can be entered once")
        self.entered = True
        self.stats.add(calls=1)
        try:
            found = yield from self._look()
            if found.answer is not None:
                self._serve(found)
                return
            yield from self._admit()
        except GeneratorExit:
            raise
        except Refused:
            yield from self._release(settle_tokens=0, why="refused")
            if not (yield from self._serve_stale()):
                raise
        except BaseException:
            # An error, or an interrupt or cancellation during a round trip or a wait: give back
            # everything taken so far (nothing reached the upstream), then let it through.
            yield from self._release(settle_tokens=0, why="interrupted on the way in")
            raise

    def _look(self) -> Flow[Found]:
        p = self.plan.policy
        asked = time.monotonic()
        found = yield from self.store.lookup(self.plan.question, p.lease_ms)
        if found.waiting:
            return (yield from self._wait())
        if found.lease is not None:
            self.lease, self.lease_at = found.lease, asked
        return found

    def _wait(self) -> Flow[Found]:
        """Another caller holds the lease and is asking the upstream the same question: poll
        until its answer is stored. Polling with LEASE also takes the lease over if the holder
        vanished and it ran out. A holder that gives up says so (`abandon`): then exactly one
        waiter takes its place (elected with SET NX) and the others go on waiting for that one —
        so a failure costs one more upstream call, not one per waiter. After `max_wait_s` the
        waiter gives up without asking the upstream (`LeaseWaitTimeout`, or a stale answer)."""
        p = self.plan.policy
        q = self.plan.question
        deadline = time.monotonic() + p.max_wait_s
        since_ms = int(time.time() * 1000) - 1000  # (a second for the clocks of other hosts)
        delay = 0.01
        tried: Set[str] = set()
        while True:
            yield from sleep(delay)
            asked = time.monotonic()
            found = yield from self.store.poll(q, p.lease_ms)
            if found.lease is not None:
                self.lease, self.lease_at = found.lease, asked
                return found
            if found.answer is not None:
                return found
            if found.abandoned is not None:
                reason, holder, at_ms = found.abandoned
                if reason == "failed" and at_ms >= since_ms:
                    # Stale-if-error holds for the waiters of a call that failed as well. (A
                    # caller that came after the failure takes over instead: one more try.)
                    stale = yield from self._stale_answer()
                    if stale is not None:
                        return stale
                if holder not in tried:
                    tried.add(holder)
                    me = f"successor-{random.getrandbits(63)}"
                    if (yield from self.store.take_over(q, holder, me, p.lease_ms)):
                        log.info("the caller computing %r gave up (%s); this call takes its place", q.prompt[:80], reason)
                        self.successor, self.lease_at = me, time.monotonic()
                        self.stats.add(lease_takeovers=1)
                        return Found()
            if time.monotonic() + delay >= deadline:
                self.stats.add(lease_timeouts=1)
                raise LeaseWaitTimeout(
                    f"another caller has been computing the answer to this question for {p.max_wait_s:g} s "
                    "(max_wait_s) without storing it; not asking the upstream again",
                    0,
                )
            delay = min(delay * 1.5, 0.25)

    def _admit(self) -> Flow[None]:
        p = self.plan.policy
        # What can refuse at once, read-only, in one round trip: the budget, an open breaker, and
        # a 429 hold on the limit key when there is no limit to reserve from (RL.RESERVE sees
        # holds itself). Nothing is taken yet.
        checks: List[Cmd[Any]] = []
        if p.budget is not None:
            checks.append(c.rl_spend(p.budget.key, 0, p.budget.budget, period=p.budget.period))
        if p.breaker is not None:
            checks.append(c.cb_state(self.plan.named(p.breaker)))
        if p.limit is None:
            checks.append(c.rl_peek(self.plan.named(p.limit_key)))
        results = (yield from batch(*checks)) if checks else []
        if p.budget is not None:
            spend = results.pop(0)
            if isinstance(spend, BaseException):
                raise spend
            if not spend.allowed:
                self.stats.add(budget_refusals=1)
                raise BudgetExceeded(f"budget {p.budget.key} is spent", spend.reset_ms)
        if p.breaker is not None:
            state = results.pop(0)
            if isinstance(state, BreakerState) and state.state == "open" and (state.forced == "open" or state.next_transition_ms > 0):
                self.stats.add(breaker_refusals=1)
                retry = -1 if state.forced == "open" else state.next_transition_ms
                raise BreakerOpen(f"circuit breaker {self.plan.named(p.breaker)} is open", retry)
        if p.limit is None:
            peek = results.pop(0)
            if isinstance(peek, Peek) and peek.retry_after_ms > 0:
                yield from self._hold(peek.retry_after_ms)
        else:
            yield from self._reserve()
        if p.slot is not None:
            slot = p.slot
            grant = yield from one(
                c.rl_acquire(self._slot_key(), slot.max_in_flight, priority=slot.priority, wait_ms=slot.wait_ms, lease_ms=slot.lease_ms)
            )
            if not grant.granted:
                raise SlotUnavailable(
                    f"no slot of {self._slot_key()} within {slot.wait_ms} ms (queue position {grant.queue_position})",
                    grant.estimated_wait_ms,
                )
            self.slot = grant.slot_id
        if p.breaker is not None:
            # Last, so that a refusal by the limit or the slot never holds a probe ticket.
            name = self.plan.named(p.breaker)
            ticket = yield from one(c.cb_allow(name))
            if not ticket.allowed:
                self.stats.add(breaker_refusals=1)
                raise BreakerOpen(f"circuit breaker {name} is {ticket.state}", ticket.retry_after_ms)
            self.ticket = ticket.ticket
        self.started = time.monotonic()

    def _reserve(self) -> Flow[None]:
        p = self.plan.policy
        assert p.limit is not None
        key = self.plan.named(p.limit_key)
        deadline = time.monotonic() + p.max_wait_s
        waited = False
        while True:
            r = yield from one(c.rl_reserve(key, p.limit, self.plan.estimate_tokens))
            if r.allowed:
                self.reservation = r.id
                return
            delay = r.retry_after_ms / 1000.0
            if time.monotonic() + delay > deadline:
                self.stats.add(limit_refusals=1)
                raise RateLimited(f"rate limit {key}: next call allowed in {r.retry_after_ms} ms", r.retry_after_ms)
            if not waited:
                self.stats.add(limit_waits=1)
                waited = True
            yield from sleep(_spread(delay))

    def _hold(self, retry_after_ms: int) -> Flow[None]:
        """Without a limit of its own, a call still waits out a 429 hold on the limit key."""
        key = self.plan.named(self.plan.policy.limit_key)
        deadline = time.monotonic() + self.plan.policy.max_wait_s
        waited = False
        while retry_after_ms > 0:
            delay = retry_after_ms / 1000.0
            if time.monotonic() + delay > deadline:
                self.stats.add(limit_refusals=1)
                raise RateLimited(f"{key} is held after an upstream 429: next call allowed in {retry_after_ms} ms", retry_after_ms)
            if not waited:
                self.stats.add(limit_waits=1)
                waited = True
            yield from sleep(_spread(delay))
            results = yield from batch(c.rl_peek(key))
            peek = results[0]
            retry_after_ms = peek.retry_after_ms if isinstance(peek, Peek) else 0

    def _slot_key(self) -> str:
        p = self.plan.policy
        assert p.slot is not None
        return self.plan.named(p.slot.key or p.limit_key)

    def _serve(self, found: Found) -> None:
        self.answer, self.source, self.score = found.answer, found.source, found.score
        counter = {"exact": "exact_hits", "semantic": "semantic_hits", "lease": "coalesced", "stale": "stale_served"}
        if found.source in counter:
            self.stats.add(**{counter[found.source]: 1})

    def _stale_answer(self) -> Flow[Optional[Found]]:
        """With `stale_ms`: an answer expired less than that ago (or one stored meanwhile)."""
        p = self.plan.policy
        if p.stale_ms is None:
            return None
        try:
            found = yield from self.store.stale(self.plan.question, p.stale_ms)
        except SluiceError as exc:
            log.warning("stale lookup failed: %s", exc)
            return None
        return found if found.answer is not None else None

    def _serve_stale(self) -> Flow[bool]:
        found = yield from self._stale_answer()
        if found is None:
            return False
        self._serve(found)
        return True

    # ------------------------------------------------------------------ in the body

    def record(
        self,
        answer: str | bytes,
        *,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
        cost: Optional[float] = None,
    ) -> None:
        if self.answer is not None:
            raise RuntimeError("this call was answered from the cache; there is nothing to record")
        self.recorded = answer.encode("utf-8") if isinstance(answer, str) else answer
        if total_tokens is None and (prompt_tokens is not None or completion_tokens is not None):
            total_tokens = (prompt_tokens or 0) + (completion_tokens or 0)
        self.tokens = total_tokens
        price = self.plan.policy.price
        if cost is None and price is not None and prompt_tokens is not None and completion_tokens is not None:
            cost = price.cost(prompt_tokens, completion_tokens)
        self.cost = cost

    def penalize(self, retry_after_s: Optional[float]) -> Flow[None]:
        """The upstream answered 429: hold the shared limit for everyone, then wait for it here
        (or raise RateLimited when the upstream asks for longer than `max_wait_s`)."""
        ms = _penalty_ms(retry_after_s)
        self.rate_limited += 1
        self.stats.add(upstream_calls=1, upstream_429s=1)
        p = self.plan.policy
        held = yield from self._penalize(ms)
        if ms > p.max_wait_s * 1000:
            self.stats.add(limit_refusals=1)
            raise RateLimited(f"the upstream asked to wait {ms} ms (Retry-After), longer than max_wait_s", ms)
        if not held:
            yield from sleep(ms / 1000.0)
        if p.limit is not None:
            yield from self._reserve()
        else:
            yield from self._hold(ms if held else 0)

    def _penalize(self, ms: int) -> Flow[bool]:
        """RL.PENALIZE on the limit key — with a limit in the policy or not, so every caller of
        every instance holds back. The reservation is settled at 0 first (the upstream refused
        before doing any work), in the same round trip: a refund after the penalty would put
        tokens back into the held bucket."""
        cmds: List[Cmd[Any]] = []
        if self.reservation is not None:
            cmds.append(c.rl_settle(self.reservation, 0))
        cmds.append(c.rl_penalize(self.plan.named(self.plan.policy.limit_key), ms))
        try:
            results = yield from batch(*cmds)
        except SluiceError as exc:
            results = [exc] * len(cmds)
        # (Forgotten only now: if an interrupt stops the round trip, the way out settles it.)
        self.reservation = None
        for result in results:
            if isinstance(result, SluiceError):
                self.stats.add(sluice_errors=1)
                log.warning("sluice bookkeeping after a 429 failed: %s", result)
        return not isinstance(results[-1], SluiceError)

    # ------------------------------------------------------------------ way out

    def exit(self, exc: Optional[BaseException]) -> Flow[bool]:
        """Returns True when the body's exception is replaced by a stale answer."""
        try:
            return (yield from self._exit(exc))
        except GeneratorExit:
            raise
        except BaseException:
            yield from self._release(settle_tokens=self.plan.estimate_tokens, why="interrupted on the way out")
            raise

    def _exit(self, exc: Optional[BaseException]) -> Flow[bool]:
        if self.answer is not None and self.recorded is None:
            return False  # answered from the cache (or stale after a refusal); nothing is held
        latency = None if self.started is None else int((time.monotonic() - self.started) * 1000)
        if self.recorded is not None:
            # The upstream answered. Whatever the body did afterwards, the answer is stored, its
            # tokens settled and the breaker hears of the success; its exception is raised.
            yield from self._finish_ok(latency)
            return False
        if exc is None:
            yield from self._release(settle_tokens=0, why="the body ended without call.record()")
            return False
        if isinstance(exc, Refused):
            # Raised by penalize(): the 429s went on past the policy's wait.
            yield from self._release(settle_tokens=0, outcome=True if self.rate_limited else None, latency=latency, why="refused")
            return (yield from self._serve_stale())
        status = _status_of(exc)
        if isinstance(exc, UpstreamRateLimited) or status == 429:
            self.stats.add(upstream_calls=1, upstream_429s=1)
            yield from self._penalize(_penalty_ms(_retry_after_of(exc)))
            # A 429 is the limit's business, not a sign the upstream is down.
            yield from self._release(settle_tokens=0, outcome=True, latency=latency)
            return (yield from self._serve_stale())
        if not isinstance(exc, Exception):
            # Cancelled or interrupted: the upstream is not to blame, and whether it was asked
            # (and what that cost) is unknown, so the limit keeps the estimate.
            yield from self._release(settle_tokens=self.plan.estimate_tokens, why=f"the body was interrupted ({type(exc).__name__})")
            return False
        failed = self.plan.policy.upstream_failure or is_upstream_failure
        if failed(exc):
            self.stats.add(upstream_calls=1, upstream_failures=1)
            yield from self._release(settle_tokens=0, outcome=False, latency=latency, reason="failed")
            return (yield from self._serve_stale())
        if status is not None and 400 <= status < 500:
            # The request was wrong; the upstream is healthy and the caller must see the error.
            self.stats.add(upstream_calls=1)
            yield from self._release(settle_tokens=0, outcome=True, latency=latency)
            return False
        # The body's own error: whether the upstream was asked is unknown.
        yield from self._release(settle_tokens=self.plan.estimate_tokens, why=f"the body raised {type(exc).__name__}")
        return False

    def _finish_ok(self, latency: Optional[int]) -> Flow[None]:
        p = self.plan.policy
        assert self.recorded is not None
        self.stats.add(upstream_calls=1, tokens_used=self.tokens or 0, absorbed_429s=self.rate_limited)
        # Store first: callers waiting on the lease are answered as soon as the entry exists.
        try:
            yield from self.store.store(
                self.plan.question,
                self.recorded,
                ttl_ms=p.ttl_ms,
                tokens=self.tokens,
                cost=self.cost,
                tag=p.tag,
                lease=self.lease,
                clear_handoff=self.successor is not None,
            )
            self.lease = self.successor = None
        except SluiceError as exc:
            self.stats.add(sluice_errors=1)
            log.warning("could not store the answer: %s", exc)
        actual = self.tokens if self.tokens is not None else self.plan.estimate_tokens
        yield from self._release(settle_tokens=actual, outcome=True, latency=latency)
        if p.budget is not None and self.cost:
            yield from self._spend(self.cost)
        self.answer, self.source = self.recorded, None

    def _spend(self, cost: float) -> Flow[None]:
        budget = self.plan.policy.budget
        assert budget is not None
        results = yield from batch(c.rl_spend(budget.key, cost, budget.budget, period=budget.period))
        spend = results[0]
        if isinstance(spend, SluiceError):
            self.stats.add(sluice_errors=1)
            log.warning("RL.SPEND failed: %s", spend)
            return
        if not spend.allowed and spend.remaining > 0:
            # The money is spent already, but RL.SPEND refuses (and forgets) an amount that would
            # overshoot. Spending what is left at least closes the budget for the next callers.
            log.info("call cost %s overshoots budget %s; charging the %s left", cost, budget.key, spend.remaining)
            yield from self._try(batch(c.rl_spend(budget.key, spend.remaining, budget.budget, period=budget.period)))

    def _release(
        self,
        *,
        settle_tokens: int,
        outcome: Optional[bool] = None,
        latency: Optional[int] = None,
        reason: str = "gave-up",
        why: str = "",
    ) -> Flow[None]:
        """Gives back what the call holds, in one round trip (and one more to hand the lease
        over). Errors are logged, not raised: the caller's own result or exception matters more
        than the bookkeeping. Safe to call again: what was given back is forgotten."""
        p = self.plan.policy
        cmds: List[Cmd[Any]] = []
        if self.reservation is not None:
            cmds.append(c.rl_settle(self.reservation, settle_tokens))
        if self.ticket is not None and p.breaker is not None:
            if outcome is not None:
                cmds.append(c.cb_report(self.plan.named(p.breaker), self.ticket, outcome, latency))
            else:
                log.warning(
                    "breaker %s: no outcome to report (%s); its ticket is dropped (a half-open probe that never reports is replaced after OPEN-MS)",
                    self.plan.named(p.breaker),
                    why or "no outcome",
                )
                self.ticket = None
        if self.slot is not None:
            cmds.append(c.rl_release(self._slot_key(), self.slot))
        if cmds:
            yield from self._try(batch(*cmds))
        # Forgotten only once the round trip is over: an interrupt during it leaves them for the
        # way out's own clean-up to give back.
        self.reservation = self.ticket = self.slot = None
        holder = self.lease or self.successor
        if holder is not None:
            self.lease = self.successor = None
            remaining = p.lease_ms - int((time.monotonic() - self.lease_at) * 1000)
            yield from self._try(self.store.abandon(self.plan.question, reason, holder, remaining))

    def _try(self, flow: Flow[Any]) -> Flow[None]:
        try:
            results = yield from flow
        except SluiceError as exc:
            self.stats.add(sluice_errors=1)
            log.warning("sluice bookkeeping failed: %s", exc)
            return
        for result in results if isinstance(results, list) else []:
            if isinstance(result, SluiceError):
                self.stats.add(sluice_errors=1)
                log.warning("sluice bookkeeping failed: %s", result)


def _spread(delay: float) -> float:
    # The bucket refills continuously, so waiters would all come back in the same millisecond
    # and all but one be sent away again.
    return delay + random.uniform(0.0, min(0.05, 0.1 * delay + 0.005))


def _penalty_ms(retry_after_s: Optional[float]) -> int:
    """Retry-After in ms, within RL.PENALIZE's 0..86,400,000 (a missing or unreadable one: 1 s)."""
    seconds = _DEFAULT_RETRY_AFTER_S if retry_after_s is None or math.isnan(retry_after_s) else retry_after_s
    if seconds * 1000 >= _MAX_PENALTY_MS:
        return _MAX_PENALTY_MS
    return max(0, int(seconds * 1000))


def _status_of(exc: BaseException) -> Optional[int]:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is None:
        status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _retry_after_of(exc: BaseException) -> Optional[float]:
    if isinstance(exc, UpstreamRateLimited):
        return exc.retry_after_s
    headers = getattr(getattr(exc, "response", None), "headers", None) or getattr(exc, "headers", None)
    return retry_after_seconds(headers) if headers is not None else None


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds a 429 asks to wait: `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""

    def header(name: str) -> Optional[str]:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.title())
        return value

    ms = header("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = header("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------------- the public wrappers


def _warn_if_in_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    warnings.warn(
        "a blocking Sluice guarded call (Sluice, `with`) inside a running event loop blocks the loop for as long "
        "as it waits — for another caller's answer, the rate limit, a slot — and a caller it waits for on the same "
        "loop cannot finish; use AsyncSluice and `async with`",
        RuntimeWarning,
        stacklevel=3,
    )


class _CallView:
    """What the body of a guarded call sees."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    @property
    def hit(self) -> bool:
        """True when the answer came from Sluice (exact, semantic, lease or stale): skip the upstream."""
        g = self._guard
        return g.answer is not None and g.recorded is None

    @property
    def source(self) -> Optional[str]:
        """"exact", "semantic", "lease" (another caller's identical call), "stale", or None."""
        return self._guard.source

    @property
    def score(self) -> Optional[float]:
        return self._guard.score

    @property
    def answer_bytes(self) -> Optional[bytes]:
        return self._guard.answer if self._guard.answer is not None else self._guard.recorded

    @property
    def answer(self) -> Optional[str]:
        value = self.answer_bytes
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def key(self) -> str:
        return self._guard.plan.question.key

    @property
    def reservation_id(self) -> Optional[str]:
        return self._guard.reservation

    @property
    def rate_limited(self) -> int:
        """429s this call absorbed so far."""
        return self._guard.rate_limited

    def record(
        self,
        answer: str | bytes,
        *,
        prompt_tokens: Optional[int] = None,
        completion_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
        cost: Optional[float] = None,
    ) -> None:
        """The upstream's answer and what it cost. On a clean exit it is stored (with TOKENS and
        COST), the reservation is settled with the real token count and the breaker hears success."""
        self._guard.record(answer, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=total_tokens, cost=cost)


class LLMCall(_CallView):
    """`with sluice.llm_call(...) as call:` — see `Sluice.llm_call`."""

    def __init__(self, client: "redis.Redis", guard: Guard) -> None:
        super().__init__(guard)
        self._client = client

    def __enter__(self) -> "LLMCall":
        _warn_if_in_event_loop()
        run(self._client, self._guard.enter())
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        return run(self._client, self._guard.exit(exc))

    def penalize(self, retry_after_s: Optional[float] = None) -> None:
        """Tell Sluice the upstream answered 429: every caller of the limit backs off for
        `retry_after_s`; returns when this call may try again (raises RateLimited past max_wait_s)."""
        run(self._client, self._guard.penalize(retry_after_s))


class AsyncLLMCall(_CallView):
    """`async with sluice.llm_call(...) as call:` — see `AsyncSluice.llm_call`."""

    def __init__(self, client: "redis.asyncio.Redis", guard: Guard) -> None:
        super().__init__(guard)
        self._client = client

    async def __aenter__(self) -> "AsyncLLMCall":
        await arun(self._client, self._guard.enter())
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        # Giving back runs to its end even if this task is cancelled meanwhile.
        return await arun(self._client, self._guard.exit(exc), shielded=True)

    async def penalize(self, retry_after_s: Optional[float] = None) -> None:
        await arun(self._client, self._guard.penalize(retry_after_s))
