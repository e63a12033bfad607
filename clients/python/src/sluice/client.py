"""`Sluice` (blocking) and `AsyncSluice` (asyncio): typed commands grouped by what they do, and
the guarded LLM call. Both sit on redis-py; any connection option it takes works here."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, TypeVar, Union

import redis
import redis.asyncio

from . import _commands as c
from ._flow import Cmd, Flow, arun, one, run
from ._guard import AsyncLLMCall, Guard, LLMCall, Plan
from ._lookup import AnswerStore, LLMStore
from .keys import prompt_question
from .types import (
    BreakerPolicy,
    BreakerReport,
    BreakerState,
    BreakerTicket,
    BudgetState,
    CacheEntry,
    CallStats,
    Limit,
    LimitState,
    LLMAnswer,
    NamespaceInfo,
    Peek,
    Policy,
    Reservation,
    SemanticFeedback,
    SemanticMatch,
    Settlement,
    SlotGrant,
    Spend,
    TakeResult,
)

T = TypeVar("T")

DEFAULT_URL = "redis://127.0.0.1:7379"
PolicyLike = Union[Policy, str, None]


def resolve_policy(default: Policy, policy: PolicyLike) -> Policy:
    """A Policy as given; a string is the name of a [limits.NAME] policy on the server, applied
    to the client's default Policy; None is the default."""
    if policy is None:
        return default
    if isinstance(policy, str):
        return dataclasses.replace(default, limit=policy)
    return policy


def _plan(
    default: Policy,
    *,
    model: str,
    prompt: str,
    namespace: str,
    policy: PolicyLike,
    estimate_tokens: int,
    params: Optional[Mapping[str, Any]],
) -> Plan:
    resolved = resolve_policy(default, policy)
    question = prompt_question(namespace, model, prompt, params, semantic=resolved.semantic, min_score=resolved.min_score)
    return Plan(question=question, model=model, policy=resolved, estimate_tokens=estimate_tokens)


_LLM_CALL_DOC = """A guarded LLM call, used as a context manager.

        On the way in, in order: one `LLM.GET ns prompt SCOPE s LEASE ms` — the exact layers (L1,
        L2), then the semantic layer, then the question's lease; if another caller holds the lease
        on this very question, polling until its answer is stored (so concurrent identical
        prompts make one upstream call; if that caller gives up, one waiter takes its place);
        then the budget and breaker checks, the token reservation (`RL.RESERVE`, waiting up to
        `max_wait_s` when the limit says so), the concurrency slot (`RL.ACQUIRE`) and, last, the
        breaker ticket (`CB.ALLOW`). If the answer was found, `call.hit` is true and
        `call.answer` holds it; otherwise the body calls the upstream and `call.record(...)`s the
        answer and its token counts.

        On the way out: the answer is stored in both layers with its TOKENS and COST
        (`LLM.SET ... LEASE token`, fulfilling the lease), the reservation is settled with the
        real token count, the breaker hears success or failure and the latency, the slot is
        released and the cost is spent from the budget — also when the body raises after
        `record()` (its exception is then raised). An upstream 429 (`UpstreamRateLimited`, or an
        SDK error with status 429) holds the limit key for its Retry-After (`RL.PENALIZE`) so every
        caller on every instance backs off. If the policy has `stale_ms` and the upstream failed
        (`Policy.upstream_failure`), the breaker was open or the limit was spent, an answer
        expired less than `stale_ms` ago is served instead (`call.source == "stale"`) and the
        exception is suppressed. An interrupt or a cancellation at any point gives back what
        was taken.

        `params`: everything besides the prompt that changes the answer (temperature, system
        prompt, tools...): part of the question's SCOPE.
        """


class _Group:
    def __init__(self, owner: "Sluice") -> None:
        self._owner = owner

    def _x(self, cmd: Cmd[T]) -> T:
        return self._owner.execute(cmd)


class _AsyncGroup:
    def __init__(self, owner: "AsyncSluice") -> None:
        self._owner = owner

    async def _x(self, cmd: Cmd[T]) -> T:
        return await self._owner.execute(cmd)


# ---------------------------------------------------------------------- blocking


class CacheCommands(_Group):
    """The exact cache: CACHE.GET/CACHE.SET (leases, stale-if-error, savings) and GET/SET/DEL."""

    def get(self, key: str, *, lease_ms: Optional[int] = None, stale_ms: Optional[int] = None) -> CacheEntry:
        return self._x(c.cache_get(key, lease_ms, stale_ms))

    def set(
        self,
        key: str,
        value: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        lease: Optional[str] = None,
    ) -> bool:
        return self._x(c.cache_set(key, value, px=px, ex=ex, tokens=tokens, cost=cost, tag=tag, lease=lease))

    def get_value(self, key: str) -> Optional[bytes]:
        return self._x(c.get(key))

    def delete(self, *keys: str) -> int:
        return self._x(c.delete(*keys))

    def exists(self, *keys: str) -> int:
        return self._x(c.exists(*keys))

    def pttl(self, key: str) -> int:
        return self._x(c.pttl(key))


class LLMCommands(_Group):
    """Both layers at once: LLM.GET (exact key in L1 and L2, then the semantic layer, stale, the
    question's lease) and LLM.SET (both layers, or neither)."""

    def get(
        self,
        namespace: str,
        prompt: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        lease_ms: Optional[int] = None,
        stale_ms: Optional[int] = None,
        why: bool = False,
    ) -> LLMAnswer:
        return self._x(c.llm_get(namespace, prompt, scope=scope, min_score=min_score, lease_ms=lease_ms, stale_ms=stale_ms, why=why))

    def set(
        self,
        namespace: str,
        prompt: str,
        answer: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        scope: Optional[str] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        lease: Optional[str] = None,
    ) -> bool:
        return self._x(c.llm_set(namespace, prompt, answer, px=px, ex=ex, scope=scope, tokens=tokens, cost=cost, tag=tag, lease=lease))


class SemanticCommands(_Group):
    """The semantic cache: SEM.GET/SET/FEEDBACK/DEL/INFO/CONFIG."""

    def get(
        self,
        namespace: str,
        prompt: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        vec: Optional[bytes] = None,
        why: bool = False,
    ) -> Optional[SemanticMatch]:
        return self._x(c.sem_get(namespace, prompt, scope=scope, min_score=min_score, vec=vec, why=why))

    def set(
        self,
        namespace: str,
        prompt: str,
        response: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        scope: Optional[str] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        vec: Optional[bytes] = None,
    ) -> bool:
        return self._x(c.sem_set(namespace, prompt, response, px=px, ex=ex, scope=scope, tokens=tokens, cost=cost, tag=tag, vec=vec))

    def feedback(
        self,
        namespace: str,
        prompt: str,
        verdict: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        vec: Optional[bytes] = None,
    ) -> Optional[SemanticFeedback]:
        return self._x(c.sem_feedback(namespace, prompt, verdict, scope=scope, min_score=min_score, vec=vec))

    def delete(self, namespace: str, prompt: Optional[str] = None, *, scope: Optional[str] = None) -> int:
        return self._x(c.sem_del(namespace, prompt, scope))

    def info(self, namespace: str) -> Optional[NamespaceInfo]:
        return self._x(c.sem_info(namespace))

    def config(self, namespace: str, *, min_score: Optional[float] = None, max_entries: Optional[int] = None) -> NamespaceInfo:
        return self._x(c.sem_config(namespace, min_score=min_score, max_entries=max_entries))


class LimitCommands(_Group):
    """Request and token rate limits: RL.TAKE/RESERVE/SETTLE/PEEK/PENALIZE/SYNC."""

    def take(self, key: str, limit: Union[Limit, str], *, tokens: Optional[int] = None, dryrun: bool = False) -> TakeResult:
        return self._x(c.rl_take(key, limit, tokens=tokens, dryrun=dryrun))

    def reserve(self, key: str, limit: Union[Limit, str], estimate: int) -> Reservation:
        return self._x(c.rl_reserve(key, limit, estimate))

    def settle(self, reservation_id: str, actual: int) -> Settlement:
        return self._x(c.rl_settle(reservation_id, actual))

    def peek(self, key: str) -> Optional[Peek]:
        return self._x(c.rl_peek(key))

    def penalize(self, key: str, retry_after_ms: int) -> LimitState:
        return self._x(c.rl_penalize(key, retry_after_ms))

    def sync(
        self,
        key: str,
        remaining_requests: int,
        remaining_tokens: int,
        reset_ms: int,
        limit: Union[Limit, str, None] = None,
    ) -> Optional[LimitState]:
        return self._x(c.rl_sync(key, remaining_requests, remaining_tokens, reset_ms, limit))


class SlotCommands(_Group):
    """Concurrency slots with a priority queue: RL.ACQUIRE/RELEASE."""

    def acquire(
        self,
        key: str,
        max_in_flight: int,
        *,
        priority: Optional[int] = None,
        wait_ms: Optional[int] = None,
        lease_ms: Optional[int] = None,
    ) -> SlotGrant:
        return self._x(c.rl_acquire(key, max_in_flight, priority=priority, wait_ms=wait_ms, lease_ms=lease_ms))

    def release(self, key: str, slot_id: str) -> bool:
        return self._x(c.rl_release(key, slot_id))


class BudgetCommands(_Group):
    """Spend budgets: RL.SPEND/RL.BUDGET."""

    def spend(
        self,
        key: str,
        amount: float,
        budget: Union[float, str],
        *,
        period: Union[str, int, None] = None,
        near: Optional[float] = None,
        dryrun: bool = False,
    ) -> Spend:
        """`budget` is an amount, or the name of a [budgets.NAME] policy."""
        return self._x(c.rl_spend(key, amount, budget, period=period, near=near, dryrun=dryrun))

    def get(self, key: str) -> Optional[BudgetState]:
        return self._x(c.rl_budget(key))


class BreakerCommands(_Group):
    """Circuit breakers: CB.ALLOW/REPORT/STATE/FORCE/CONFIG."""

    def allow(self, name: str) -> BreakerTicket:
        return self._x(c.cb_allow(name))

    def report(self, name: str, ticket: str, success: bool, latency_ms: Optional[int] = None) -> BreakerReport:
        return self._x(c.cb_report(name, ticket, success, latency_ms))

    def state(self, name: str) -> BreakerState:
        return self._x(c.cb_state(name))

    def force(self, name: str, mode: str) -> bool:
        return self._x(c.cb_force(name, mode))

    def config(
        self,
        name: str,
        *,
        window: Optional[int] = None,
        min_calls: Optional[int] = None,
        failure_rate: Optional[float] = None,
        slow_ms: Optional[int] = None,
        slow_rate: Optional[float] = None,
        open_ms: Optional[int] = None,
        probes: Optional[int] = None,
    ) -> BreakerPolicy:
        settings: Dict[str, Optional[float]] = dict(
            window=window, min_calls=min_calls, failure_rate=failure_rate, slow_ms=slow_ms, slow_rate=slow_rate, open_ms=open_ms, probes=probes
        )
        return self._x(c.cb_config(name, settings))


class Sluice:
    """A blocking client. `Sluice()` connects to 127.0.0.1:7379; pass `url=` or your own
    `redis.Redis` (its connection pool is shared by every thread using this object)."""

    def __init__(
        self,
        client: Optional["redis.Redis"] = None,
        *,
        url: str = DEFAULT_URL,
        policy: Optional[Policy] = None,
        store: Optional[AnswerStore] = None,
        **redis_options: Any,
    ) -> None:
        self.redis: "redis.Redis" = client if client is not None else redis.Redis.from_url(url, **redis_options)
        self.policy = policy or Policy()
        self.stats = CallStats()
        self._store = store or LLMStore()
        self.llm = LLMCommands(self)
        self.cache = CacheCommands(self)
        self.semantic = SemanticCommands(self)
        self.limits = LimitCommands(self)
        self.slots = SlotCommands(self)
        self.budgets = BudgetCommands(self)
        self.breakers = BreakerCommands(self)

    def execute(self, cmd: Cmd[T]) -> T:
        return run(self.redis, one(cmd))

    def run_flow(self, flow: Flow[T]) -> T:
        return run(self.redis, flow)

    def ping(self) -> bool:
        return self.execute(c.ping())

    def server_stats(self) -> Dict[str, Any]:
        """STATS as a dict."""
        return self.execute(c.stats())

    def llm_call(
        self,
        *,
        model: str,
        prompt: str,
        namespace: str = "llm",
        policy: PolicyLike = None,
        estimate_tokens: int = 0,
        params: Optional[Mapping[str, Any]] = None,
    ) -> LLMCall:
        return self.guarded(
            _plan(self.policy, model=model, prompt=prompt, namespace=namespace, policy=policy, estimate_tokens=estimate_tokens, params=params)
        )

    llm_call.__doc__ = _LLM_CALL_DOC

    def guarded(self, plan: Plan) -> LLMCall:
        """A guarded call for a question keyed by an integration (the OpenAI wrapper, ...)."""
        return LLMCall(self.redis, Guard(self._store, self.stats, plan))

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> "Sluice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- asyncio


class AsyncCacheCommands(_AsyncGroup):
    __doc__ = CacheCommands.__doc__

    async def get(self, key: str, *, lease_ms: Optional[int] = None, stale_ms: Optional[int] = None) -> CacheEntry:
        return await self._x(c.cache_get(key, lease_ms, stale_ms))

    async def set(
        self,
        key: str,
        value: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        lease: Optional[str] = None,
    ) -> bool:
        return await self._x(c.cache_set(key, value, px=px, ex=ex, tokens=tokens, cost=cost, tag=tag, lease=lease))

    async def get_value(self, key: str) -> Optional[bytes]:
        return await self._x(c.get(key))

    async def delete(self, *keys: str) -> int:
        return await self._x(c.delete(*keys))

    async def exists(self, *keys: str) -> int:
        return await self._x(c.exists(*keys))

    async def pttl(self, key: str) -> int:
        return await self._x(c.pttl(key))


class AsyncLLMCommands(_AsyncGroup):
    __doc__ = LLMCommands.__doc__

    async def get(
        self,
        namespace: str,
        prompt: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        lease_ms: Optional[int] = None,
        stale_ms: Optional[int] = None,
        why: bool = False,
    ) -> LLMAnswer:
        return await self._x(c.llm_get(namespace, prompt, scope=scope, min_score=min_score, lease_ms=lease_ms, stale_ms=stale_ms, why=why))

    async def set(
        self,
        namespace: str,
        prompt: str,
        answer: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        scope: Optional[str] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        lease: Optional[str] = None,
    ) -> bool:
        return await self._x(c.llm_set(namespace, prompt, answer, px=px, ex=ex, scope=scope, tokens=tokens, cost=cost, tag=tag, lease=lease))


class AsyncSemanticCommands(_AsyncGroup):
    __doc__ = SemanticCommands.__doc__

    async def get(
        self,
        namespace: str,
        prompt: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        vec: Optional[bytes] = None,
        why: bool = False,
    ) -> Optional[SemanticMatch]:
        return await self._x(c.sem_get(namespace, prompt, scope=scope, min_score=min_score, vec=vec, why=why))

    async def set(
        self,
        namespace: str,
        prompt: str,
        response: Union[str, bytes],
        *,
        px: Optional[int] = None,
        ex: Optional[int] = None,
        scope: Optional[str] = None,
        tokens: Optional[int] = None,
        cost: Optional[float] = None,
        tag: Optional[str] = None,
        vec: Optional[bytes] = None,
    ) -> bool:
        return await self._x(c.sem_set(namespace, prompt, response, px=px, ex=ex, scope=scope, tokens=tokens, cost=cost, tag=tag, vec=vec))

    async def feedback(
        self,
        namespace: str,
        prompt: str,
        verdict: str,
        *,
        scope: Optional[str] = None,
        min_score: Optional[float] = None,
        vec: Optional[bytes] = None,
    ) -> Optional[SemanticFeedback]:
        return await self._x(c.sem_feedback(namespace, prompt, verdict, scope=scope, min_score=min_score, vec=vec))

    async def delete(self, namespace: str, prompt: Optional[str] = None, *, scope: Optional[str] = None) -> int:
        return await self._x(c.sem_del(namespace, prompt, scope))

    async def info(self, namespace: str) -> Optional[NamespaceInfo]:
        return await self._x(c.sem_info(namespace))

    async def config(self, namespace: str, *, min_score: Optional[float] = None, max_entries: Optional[int] = None) -> NamespaceInfo:
        return await self._x(c.sem_config(namespace, min_score=min_score, max_entries=max_entries))


class AsyncLimitCommands(_AsyncGroup):
    __doc__ = LimitCommands.__doc__

    async def take(self, key: str, limit: Union[Limit, str], *, tokens: Optional[int] = None, dryrun: bool = False) -> TakeResult:
        return await self._x(c.rl_take(key, limit, tokens=tokens, dryrun=dryrun))

    async def reserve(self, key: str, limit: Union[Limit, str], estimate: int) -> Reservation:
        return await self._x(c.rl_reserve(key, limit, estimate))

    async def settle(self, reservation_id: str, actual: int) -> Settlement:
        return await self._x(c.rl_settle(reservation_id, actual))

    async def peek(self, key: str) -> Optional[Peek]:
        return await self._x(c.rl_peek(key))

    async def penalize(self, key: str, retry_after_ms: int) -> LimitState:
        return await self._x(c.rl_penalize(key, retry_after_ms))

    async def sync(
        self,
        key: str,
        remaining_requests: int,
        remaining_tokens: int,
        reset_ms: int,
        limit: Union[Limit, str, None] = None,
    ) -> Optional[LimitState]:
        return await self._x(c.rl_sync(key, remaining_requests, remaining_tokens, reset_ms, limit))


class AsyncSlotCommands(_AsyncGroup):
    __doc__ = SlotCommands.__doc__

    async def acquire(
        self,
        key: str,
        max_in_flight: int,
        *,
        priority: Optional[int] = None,
        wait_ms: Optional[int] = None,
        lease_ms: Optional[int] = None,
    ) -> SlotGrant:
        return await self._x(c.rl_acquire(key, max_in_flight, priority=priority, wait_ms=wait_ms, lease_ms=lease_ms))

    async def release(self, key: str, slot_id: str) -> bool:
        return await self._x(c.rl_release(key, slot_id))


class AsyncBudgetCommands(_AsyncGroup):
    __doc__ = BudgetCommands.__doc__

    async def spend(
        self,
        key: str,
        amount: float,
        budget: Union[float, str],
        *,
        period: Union[str, int, None] = None,
        near: Optional[float] = None,
        dryrun: bool = False,
    ) -> Spend:
        return await self._x(c.rl_spend(key, amount, budget, period=period, near=near, dryrun=dryrun))

    async def get(self, key: str) -> Optional[BudgetState]:
        return await self._x(c.rl_budget(key))


class AsyncBreakerCommands(_AsyncGroup):
    __doc__ = BreakerCommands.__doc__

    async def allow(self, name: str) -> BreakerTicket:
        return await self._x(c.cb_allow(name))

    async def report(self, name: str, ticket: str, success: bool, latency_ms: Optional[int] = None) -> BreakerReport:
        return await self._x(c.cb_report(name, ticket, success, latency_ms))

    async def state(self, name: str) -> BreakerState:
        return await self._x(c.cb_state(name))

    async def force(self, name: str, mode: str) -> bool:
        return await self._x(c.cb_force(name, mode))

    async def config(
        self,
        name: str,
        *,
        window: Optional[int] = None,
        min_calls: Optional[int] = None,
        failure_rate: Optional[float] = None,
        slow_ms: Optional[int] = None,
        slow_rate: Optional[float] = None,
        open_ms: Optional[int] = None,
        probes: Optional[int] = None,
    ) -> BreakerPolicy:
        settings: Dict[str, Optional[float]] = dict(
            window=window, min_calls=min_calls, failure_rate=failure_rate, slow_ms=slow_ms, slow_rate=slow_rate, open_ms=open_ms, probes=probes
        )
        return await self._x(c.cb_config(name, settings))


class AsyncSluice:
    """The asyncio client: the same groups and `llm_call`, awaited. Pass `url=` or your own
    `redis.asyncio.Redis`."""

    def __init__(
        self,
        client: Optional["redis.asyncio.Redis"] = None,
        *,
        url: str = DEFAULT_URL,
        policy: Optional[Policy] = None,
        store: Optional[AnswerStore] = None,
        **redis_options: Any,
    ) -> None:
        self.redis: "redis.asyncio.Redis" = client if client is not None else redis.asyncio.Redis.from_url(url, **redis_options)
        self.policy = policy or Policy()
        self.stats = CallStats()
        self._store = store or LLMStore()
        self.llm = AsyncLLMCommands(self)
        self.cache = AsyncCacheCommands(self)
        self.semantic = AsyncSemanticCommands(self)
        self.limits = AsyncLimitCommands(self)
        self.slots = AsyncSlotCommands(self)
        self.budgets = AsyncBudgetCommands(self)
        self.breakers = AsyncBreakerCommands(self)

    async def execute(self, cmd: Cmd[T]) -> T:
        return await arun(self.redis, one(cmd))

    async def run_flow(self, flow: Flow[T]) -> T:
        return await arun(self.redis, flow)

    async def ping(self) -> bool:
        return await self.execute(c.ping())

    async def server_stats(self) -> Dict[str, Any]:
        return await self.execute(c.stats())

    def llm_call(
        self,
        *,
        model: str,
        prompt: str,
        namespace: str = "llm",
        policy: PolicyLike = None,
        estimate_tokens: int = 0,
        params: Optional[Mapping[str, Any]] = None,
    ) -> AsyncLLMCall:
        return self.guarded(
            _plan(self.policy, model=model, prompt=prompt, namespace=namespace, policy=policy, estimate_tokens=estimate_tokens, params=params)
        )

    llm_call.__doc__ = _LLM_CALL_DOC

    def guarded(self, plan: Plan) -> AsyncLLMCall:
        return AsyncLLMCall(self.redis, Guard(self._store, self.stats, plan))

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> "AsyncSluice":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
