"""The guarded LLM call: lookup, lease, breaker ticket, reservation and slot on the way in;
store, settle, report and release on the way out. Written once as flows (see _flow) and wrapped
by `LLMCall` (with) and `AsyncLLMCall` (async with)."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, List, Mapping, Optional, Type

import redis
import redis.asyncio

from . import _commands as c
from ._flow import Cmd, Flow, arun, batch, one, run, sleep
from ._lookup import AnswerStore, Found, Question
from .errors import BreakerOpen, BudgetExceeded, RateLimited, Refused, SlotUnavailable, SluiceError, UpstreamRateLimited
from .types import CallStats, Policy

log = logging.getLogger("sluice")

_DEFAULT_RETRY_AFTER_S = 1.0


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
        self.lease: Optional[str] = None
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
        p = self.plan.policy
        q = self.plan.question
        self.stats.add(calls=1)
        asked = time.monotonic()
        found = yield from self.store.lookup(q, p.lease_ms, p.ttl_ms)
        if found.waiting:
            found = yield from self._wait_for_lease()
            asked = self.lease_at
        if found.answer is not None:
            self._serve(found)
            return
        if found.lease is not None:
            self.lease, self.lease_at = found.lease, asked
        try:
            yield from self._admit()
        except Refused as refusal:
            yield from self._release(settle_tokens=0)
            if not (yield from self._serve_stale()):
                raise refusal
        except Exception:
            yield from self._release(settle_tokens=0)
            raise

    def _wait_for_lease(self) -> Flow[Found]:
        # Another caller holds the lease and is asking the upstream the same question. Polling
        # with LEASE also takes the lease over if the holder vanished and it ran out.
        p = self.plan.policy
        deadline = time.monotonic() + p.max_wait_s
        delay = 0.01
        while True:
            yield from sleep(delay)
            self.lease_at = time.monotonic()  # a lease granted by this poll starts no earlier
            found = yield from self.store.poll(self.plan.question, p.lease_ms)
            if found.lease is not None:
                return Found(lease=found.lease)
            if not found.waiting:
                return found
            if time.monotonic() + delay >= deadline:
                log.info("gave up waiting for the lease on %s after %.1f s; calling upstream", self.plan.question.key, p.max_wait_s)
                return Found()
            delay = min(delay * 1.5, 0.25)

    def _admit(self) -> Flow[None]:
        p = self.plan.policy
        if p.budget is not None:
            spend = yield from one(c.rl_spend(p.budget.key, 0, p.budget.budget, period=p.budget.period))
            if not spend.allowed:
                self.stats.add(budget_refusals=1)
                raise BudgetExceeded(f"budget {p.budget.key} is spent", spend.reset_ms)
        if p.breaker is not None:
            name = self.plan.named(p.breaker)
            ticket = yield from one(c.cb_allow(name))
            if not ticket.allowed:
                self.stats.add(breaker_refusals=1)
                raise BreakerOpen(f"circuit breaker {name} is {ticket.state}", ticket.retry_after_ms)
            self.ticket = ticket.ticket
        if p.limit is not None:
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
            # Spread the waiters: the bucket refills continuously, so they would all come back in
            # the same millisecond and all but one be sent away again.
            yield from sleep(delay + random.uniform(0.0, min(0.05, 0.1 * delay + 0.005)))

    def _slot_key(self) -> str:
        p = self.plan.policy
        assert p.slot is not None
        return self.plan.named(p.slot.key or p.limit_key)

    def _serve(self, found: Found) -> None:
        self.answer, self.source, self.score = found.answer, found.source, found.score
        counter = {"exact": "exact_hits", "semantic": "semantic_hits", "lease": "coalesced", "stale": "stale_served"}
        if found.source in counter:
            self.stats.add(**{counter[found.source]: 1})

    def _serve_stale(self) -> Flow[bool]:
        p = self.plan.policy
        if p.stale_ms is None:
            return False
        try:
            value = yield from self.store.stale(self.plan.question, p.stale_ms)
        except SluiceError as exc:
            log.warning("stale lookup failed: %s", exc)
            return False
        if value is None:
            return False
        self._serve(Found(answer=value, source="stale"))
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
        """The upstream answered 429: hold the shared limit for everyone, then wait for it here."""
        seconds = _DEFAULT_RETRY_AFTER_S if retry_after_s is None else max(0.0, retry_after_s)
        self.rate_limited += 1
        self.stats.add(upstream_calls=1, upstream_429s=1)
        p = self.plan.policy
        if p.limit is None:
            yield from sleep(seconds)
            return
        cmds: List[Cmd[Any]] = [c.rl_penalize(self.plan.named(p.limit_key), int(seconds * 1000))]
        if self.reservation is not None:
            # The upstream refused before doing any work: nothing of the estimate was used.
            cmds.append(c.rl_settle(self.reservation, 0))
            self.reservation = None
        results = yield from batch(*cmds)
        if isinstance(results[0], SluiceError):
            log.warning("RL.PENALIZE failed: %s", results[0])
            yield from sleep(seconds)
        yield from self._reserve()

    # ------------------------------------------------------------------ way out

    def exit(self, exc: Optional[BaseException]) -> Flow[bool]:
        """Returns True when the body's exception is replaced by a stale answer."""
        if self.answer is not None and self.recorded is None:
            return False  # answered from the cache; nothing was taken
        latency = None if self.started is None else int((time.monotonic() - self.started) * 1000)
        if exc is None:
            if self.recorded is None:
                yield from self._release(settle_tokens=0)
                return False
            yield from self._finish_ok(latency)
            return False
        if not isinstance(exc, Exception):
            # Cancelled or interrupted: the upstream is not to blame and its cost is unknown.
            yield from self._release(settle_tokens=self.plan.estimate_tokens)
            return False
        if isinstance(exc, Refused):
            # Raised by penalize(): the 429s went on past the policy's wait.
            yield from self._release(settle_tokens=0, outcome=True if self.rate_limited else None, latency=latency)
            return (yield from self._serve_stale())
        status = _status_of(exc)
        if isinstance(exc, UpstreamRateLimited) or status == 429:
            self.stats.add(upstream_calls=1, upstream_429s=1)
            p = self.plan.policy
            if p.limit is not None:
                ms = int(1000 * (_retry_after_of(exc) or _DEFAULT_RETRY_AFTER_S))
                yield from self._try(batch(c.rl_penalize(self.plan.named(p.limit_key), ms)))
            # A 429 is the limit's business, not a sign the upstream is down.
            yield from self._release(settle_tokens=0, outcome=True, latency=latency)
            return (yield from self._serve_stale())
        self.stats.add(upstream_calls=1)
        if status is not None and 400 <= status < 500 and status != 408:
            # The request was wrong; the upstream is healthy and the caller must see the error.
            yield from self._release(settle_tokens=0, outcome=True, latency=latency)
            return False
        self.stats.add(upstream_failures=1)
        yield from self._release(settle_tokens=self.plan.estimate_tokens, outcome=False, latency=latency)
        return (yield from self._serve_stale())

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
            )
            self.lease = None
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
    ) -> Flow[None]:
        """Gives back what the call holds, in one round trip. Errors are logged, not raised: the
        caller's own result or exception matters more than the bookkeeping."""
        p = self.plan.policy
        cmds: List[Cmd[Any]] = []
        if self.reservation is not None:
            cmds.append(c.rl_settle(self.reservation, settle_tokens))
            self.reservation = None
        if self.ticket is not None and outcome is not None and p.breaker is not None:
            cmds.append(c.cb_report(self.plan.named(p.breaker), self.ticket, outcome, latency))
            self.ticket = None
        if self.slot is not None:
            cmds.append(c.rl_release(self._slot_key(), self.slot))
            self.slot = None
        if cmds:
            yield from self._try(batch(*cmds))
        if self.lease is not None:
            remaining = p.lease_ms - int((time.monotonic() - self.lease_at) * 1000)
            yield from self._try(self.store.abandon(self.plan.question, self.lease, remaining))
            self.lease = None

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
        return await arun(self._client, self._guard.exit(exc))

    async def penalize(self, retry_after_s: Optional[float] = None) -> None:
        await arun(self._client, self._guard.penalize(retry_after_s))
