"""Every Sluice command as (arguments, reply parser). Replies are read the same whether the
connection speaks RESP2 or RESP3 (redis-py 8 asks for RESP3): maps may be dicts or flat lists,
doubles may be floats or bulk strings, and strings may be bytes or str (decode_responses)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

from ._flow import Arg, Cmd
from .types import (
    BreakerPolicy,
    BreakerReport,
    BreakerState,
    BreakerTicket,
    BudgetState,
    CacheEntry,
    Limit,
    LLMAnswer,
    LimitState,
    NamespaceInfo,
    Peek,
    Reservation,
    SemanticFeedback,
    SemanticMatch,
    Settlement,
    SlotGrant,
    Spend,
    TakeResult,
)

# --------------------------------------------------------------------------- reply readers


def text(raw: Any) -> Optional[str]:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw)


def string(raw: Any) -> str:
    value = text(raw)
    if value is None:
        raise ValueError("expected a string reply, got nil")
    return value


def blob(raw: Any) -> Optional[bytes]:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw
    return str(raw).encode("utf-8")


def integer(raw: Any) -> int:
    return int(raw)


def opt_int(raw: Any) -> Optional[int]:
    return None if raw is None else int(raw)


def number(raw: Any) -> float:
    return float(raw)


def opt_number(raw: Any) -> Optional[float]:
    return None if raw is None else float(raw)


def flag(raw: Any) -> bool:
    return bool(int(raw))


def ok(raw: Any) -> bool:
    """+OK → True; a nil reply (SET NX refused) → False."""
    return raw is not None and raw is not False


def mapping(raw: Any) -> Dict[str, Any]:
    if isinstance(raw, dict):
        return {string(k): v for k, v in raw.items()}
    items = list(raw)
    return {string(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def is_nil_array(raw: Any) -> bool:
    return raw is None or (isinstance(raw, (list, tuple)) and len(raw) == 0)


# --------------------------------------------------------------------------- argument helpers


def _limit_args(limit: Union[Limit, str]) -> List[Arg]:
    if isinstance(limit, str):
        return ["POLICY", limit]
    return [limit.rpm, limit.tpm]


def _burst_args(limit: Union[Limit, str]) -> List[Arg]:
    if isinstance(limit, str) or (limit.burst_requests is None and limit.burst_tokens is None):
        return []
    return [
        "BURST",
        limit.burst_requests if limit.burst_requests is not None else limit.rpm,
        limit.burst_tokens if limit.burst_tokens is not None else limit.tpm,
    ]


def _expiry_args(px: Optional[int], ex: Optional[int]) -> List[Arg]:
    if px is not None and ex is not None:
        raise ValueError("give px or ex, not both")
    if px is not None:
        return ["PX", px]
    if ex is not None:
        return ["EX", ex]
    return []


def _saving_args(tokens: Optional[int], cost: Optional[float], tag: Optional[str]) -> List[Arg]:
    args: List[Arg] = []
    if tokens is not None:
        args += ["TOKENS", tokens]
    if cost is not None:
        args += ["COST", _decimal(cost)]
    if tag is not None:
        args += ["TAG", tag]
    return args


def _decimal(value: float) -> str:
    # repr() of a float can be "1e-05", which Sluice's number parsing need not accept; a fixed
    # notation with the digits that matter always is.
    if value == int(value):
        return str(int(value))
    return format(value, ".12f").rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- exact cache


def cache_get(key: str, lease_ms: Optional[int] = None, stale_ms: Optional[int] = None) -> Cmd[CacheEntry]:
    args: List[Arg] = ["CACHE.GET", key]
    if lease_ms is not None:
        args += ["LEASE", lease_ms]
    if stale_ms is not None:
        args += ["STALE", stale_ms]

    def parse(raw: Any) -> CacheEntry:
        value, layer, age, lease = list(raw)
        return CacheEntry(blob(value), text(layer), opt_int(age), text(lease))

    return Cmd(tuple(args), parse)


def cache_set(
    key: str,
    value: Union[str, bytes],
    *,
    px: Optional[int] = None,
    ex: Optional[int] = None,
    tokens: Optional[int] = None,
    cost: Optional[float] = None,
    tag: Optional[str] = None,
    lease: Optional[str] = None,
) -> Cmd[bool]:
    args: List[Arg] = ["CACHE.SET", key, value, *_expiry_args(px, ex), *_saving_args(tokens, cost, tag)]
    if lease is not None:
        args += ["LEASE", lease]
    return Cmd(tuple(args), ok)


def get(key: str) -> Cmd[Optional[bytes]]:
    return Cmd(("GET", key), blob)


def set_(key: str, value: Union[str, bytes], *, px: Optional[int] = None, ex: Optional[int] = None, nx: bool = False) -> Cmd[bool]:
    args: List[Arg] = ["SET", key, value, *_expiry_args(px, ex)]
    if nx:
        args.append("NX")
    return Cmd(tuple(args), ok)


def delete(*keys: str) -> Cmd[int]:
    return Cmd(("DEL", *keys), integer)


def exists(*keys: str) -> Cmd[int]:
    return Cmd(("EXISTS", *keys), integer)


def pttl(key: str) -> Cmd[int]:
    return Cmd(("PTTL", key), integer)


def incr(key: str) -> Cmd[int]:
    return Cmd(("INCR", key), integer)


# --------------------------------------------------------------------------- both layers: LLM.*


def llm_get(
    namespace: str,
    prompt: str,
    *,
    scope: Optional[str] = None,
    min_score: Optional[float] = None,
    lease_ms: Optional[int] = None,
    stale_ms: Optional[int] = None,
    why: bool = False,
) -> Cmd[LLMAnswer]:
    args: List[Arg] = ["LLM.GET", namespace, prompt]
    if scope is not None:
        args += ["SCOPE", scope]
    if min_score is not None:
        args += ["MINSCORE", _decimal(min_score)]
    if lease_ms is not None:
        args += ["LEASE", lease_ms]
    if stale_ms is not None:
        args += ["STALE", stale_ms]
    if why:
        args.append("WHY")

    def parse(raw: Any) -> LLMAnswer:
        items = list(raw)
        answer, layer, score, matched, age, lease = items[:6]
        reason = text(items[6]) if len(items) > 6 else None
        return LLMAnswer(blob(answer), string(layer), opt_number(score), text(matched), opt_int(age), text(lease), reason)

    return Cmd(tuple(args), parse)


def llm_set(
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
) -> Cmd[bool]:
    args: List[Arg] = ["LLM.SET", namespace, prompt, answer, *_expiry_args(px, ex)]
    if scope is not None:
        args += ["SCOPE", scope]
    args += _saving_args(tokens, cost, tag)
    if lease is not None:
        args += ["LEASE", lease]
    return Cmd(tuple(args), ok)


# --------------------------------------------------------------------------- semantic cache


def _sem_filters(scope: Optional[str], min_score: Optional[float], vec: Optional[bytes]) -> List[Arg]:
    args: List[Arg] = []
    if min_score is not None:
        args += ["MINSCORE", _decimal(min_score)]
    if scope is not None:
        args += ["SCOPE", scope]
    if vec is not None:
        args += ["VEC", vec]
    return args


def sem_get(
    namespace: str,
    prompt: str,
    *,
    scope: Optional[str] = None,
    min_score: Optional[float] = None,
    vec: Optional[bytes] = None,
    why: bool = False,
) -> Cmd[Optional[SemanticMatch]]:
    args: List[Arg] = ["SEM.GET", namespace, prompt, *_sem_filters(scope, min_score, vec)]
    if why:
        args.append("WHY")

    def parse(raw: Any) -> Optional[SemanticMatch]:
        if is_nil_array(raw):
            return None
        items = list(raw)
        response, score, matched = items[0], items[1], items[2]
        reason = text(items[3]) if len(items) > 3 else None
        if response is None and reason is None:
            return None
        return SemanticMatch(blob(response), opt_number(score), text(matched), reason)

    return Cmd(tuple(args), parse)


def sem_set(
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
) -> Cmd[bool]:
    args: List[Arg] = ["SEM.SET", namespace, prompt, response, *_expiry_args(px, ex)]
    if scope is not None:
        args += ["SCOPE", scope]
    args += _saving_args(tokens, cost, tag)
    if vec is not None:
        args += ["VEC", vec]
    return Cmd(tuple(args), ok)


def sem_feedback(
    namespace: str,
    prompt: str,
    verdict: str,
    *,
    scope: Optional[str] = None,
    min_score: Optional[float] = None,
    vec: Optional[bytes] = None,
) -> Cmd[Optional[SemanticFeedback]]:
    if verdict not in ("good", "bad"):
        raise ValueError("verdict must be 'good' or 'bad'")
    args: List[Arg] = ["SEM.FEEDBACK", namespace, prompt, verdict]
    if scope is not None:
        args += ["SCOPE", scope]
    if min_score is not None:
        args += ["MINSCORE", _decimal(min_score)]
    if vec is not None:
        args += ["VEC", vec]

    def parse(raw: Any) -> Optional[SemanticFeedback]:
        if is_nil_array(raw):
            return None
        entry, score, threshold, good, bad, deleted = list(raw)
        return SemanticFeedback(string(entry), number(score), number(threshold), integer(good), integer(bad), flag(deleted))

    return Cmd(tuple(args), parse)


def sem_del(namespace: str, prompt: Optional[str] = None, scope: Optional[str] = None) -> Cmd[int]:
    args: List[Arg] = ["SEM.DEL", namespace]
    if prompt is not None:
        args.append(prompt)
        if scope is not None:
            args += ["SCOPE", scope]
    elif scope is not None:
        raise ValueError("a scope narrows the deletion of one prompt; give the prompt too")
    return Cmd(tuple(args), integer)


def _namespace_info(raw: Any) -> Optional[NamespaceInfo]:
    if is_nil_array(raw):
        return None
    m = mapping(raw)
    return NamespaceInfo(
        entries=integer(m["entries"]),
        dimension=integer(m["dimension"]),
        embedder=string(m["embedder"]),
        min_score=number(m["min_score"]),
        max_entries=integer(m["max_entries"]),
        hits=integer(m["hits"]),
        misses=integer(m["misses"]),
        traps=integer(m["traps"]),
        evictions=integer(m["evictions"]),
        expired=integer(m["expired"]),
        feedback_good=integer(m.get("feedback_good", 0)),
        feedback_bad=integer(m.get("feedback_bad", 0)),
        lists=integer(m.get("lists", 0)),
    )


def sem_info(namespace: str) -> Cmd[Optional[NamespaceInfo]]:
    return Cmd(("SEM.INFO", namespace), _namespace_info)


def sem_config(namespace: str, *, min_score: Optional[float] = None, max_entries: Optional[int] = None) -> Cmd[NamespaceInfo]:
    args: List[Arg] = ["SEM.CONFIG", namespace]
    if min_score is not None:
        args += ["MINSCORE", _decimal(min_score)]
    if max_entries is not None:
        args += ["MAXENTRIES", max_entries]

    def parse(raw: Any) -> NamespaceInfo:
        info = _namespace_info(raw)
        if info is None:
            raise ValueError("SEM.CONFIG answered a nil array")
        return info

    return Cmd(tuple(args), parse)


# --------------------------------------------------------------------------- rate limits


def _limit_state(raw: Any) -> LimitState:
    a, b, c, d = list(raw)[:4]
    return LimitState(integer(a), integer(b), integer(c), integer(d))


def rl_take(key: str, limit: Union[Limit, str], *, tokens: Optional[int] = None, dryrun: bool = False) -> Cmd[TakeResult]:
    args: List[Arg] = ["RL.TAKE", key, *_limit_args(limit)]
    if tokens is not None:
        args += ["TOKENS", tokens]
    args += _burst_args(limit)
    if dryrun:
        args.append("DRYRUN")

    def parse(raw: Any) -> TakeResult:
        a, b, c, d, e = list(raw)
        return TakeResult(flag(a), integer(b), integer(c), integer(d), integer(e))

    return Cmd(tuple(args), parse)


def rl_reserve(key: str, limit: Union[Limit, str], estimate: int) -> Cmd[Reservation]:
    args: List[Arg] = ["RL.RESERVE", key, *_limit_args(limit), estimate, *_burst_args(limit)]

    def parse(raw: Any) -> Reservation:
        allowed, rid, retry = list(raw)
        return Reservation(flag(allowed), text(rid), integer(retry))

    return Cmd(tuple(args), parse)


def rl_settle(reservation_id: str, actual: int) -> Cmd[Settlement]:
    def parse(raw: Any) -> Settlement:
        diff, remaining = list(raw)
        return Settlement(integer(diff), integer(remaining))

    return Cmd(("RL.SETTLE", reservation_id, actual), parse)


def rl_peek(key: str) -> Cmd[Optional[Peek]]:
    def parse(raw: Any) -> Optional[Peek]:
        if is_nil_array(raw):
            return None
        a, b, c, d, e, f = list(raw)
        return Peek(integer(a), integer(b), integer(c), integer(d), integer(e), integer(f))

    return Cmd(("RL.PEEK", key), parse)


def rl_penalize(key: str, retry_after_ms: int) -> Cmd[LimitState]:
    return Cmd(("RL.PENALIZE", key, retry_after_ms), _limit_state)


def rl_sync(
    key: str,
    remaining_requests: int,
    remaining_tokens: int,
    reset_ms: int,
    limit: Union[Limit, str, None] = None,
) -> Cmd[Optional[LimitState]]:
    args: List[Arg] = ["RL.SYNC", key, remaining_requests, remaining_tokens, reset_ms]
    if limit is not None:
        args += [*_limit_args(limit), *_burst_args(limit)]

    def parse(raw: Any) -> Optional[LimitState]:
        return None if is_nil_array(raw) else _limit_state(raw)

    return Cmd(tuple(args), parse)


def rl_acquire(
    key: str,
    max_in_flight: int,
    *,
    priority: Optional[int] = None,
    wait_ms: Optional[int] = None,
    lease_ms: Optional[int] = None,
) -> Cmd[SlotGrant]:
    args: List[Arg] = ["RL.ACQUIRE", key, max_in_flight]
    if priority is not None:
        args += ["PRIORITY", priority]
    if wait_ms is not None:
        args += ["WAIT", wait_ms]
    if lease_ms is not None:
        args += ["LEASE", lease_ms]

    def parse(raw: Any) -> SlotGrant:
        granted, slot, position, wait = list(raw)
        return SlotGrant(flag(granted), text(slot), integer(position), integer(wait))

    return Cmd(tuple(args), parse)


def rl_release(key: str, slot_id: str) -> Cmd[bool]:
    return Cmd(("RL.RELEASE", key, slot_id), flag)


def rl_spend(
    key: str,
    amount: float,
    budget: Union[float, str],
    *,
    period: Union[str, int, None] = None,
    near: Optional[float] = None,
    dryrun: bool = False,
) -> Cmd[Spend]:
    args: List[Arg] = ["RL.SPEND", key, _decimal(amount)]
    args += ["POLICY", budget] if isinstance(budget, str) else ["BUDGET", _decimal(budget)]
    if period is not None:
        args += ["PERIOD", period]
    if near is not None:
        args += ["NEAR", _decimal(near)]
    if dryrun:
        args.append("DRYRUN")

    def parse(raw: Any) -> Spend:
        allowed, remaining, reset, is_near = list(raw)
        return Spend(flag(allowed), number(remaining), integer(reset), flag(is_near))

    return Cmd(tuple(args), parse)


def rl_budget(key: str) -> Cmd[Optional[BudgetState]]:
    def parse(raw: Any) -> Optional[BudgetState]:
        if is_nil_array(raw):
            return None
        spent, budget, remaining, reset, period, near = list(raw)
        return BudgetState(number(spent), number(budget), number(remaining), integer(reset), string(period), flag(near))

    return Cmd(("RL.BUDGET", key), parse)


# --------------------------------------------------------------------------- circuit breakers


def cb_allow(name: str) -> Cmd[BreakerTicket]:
    def parse(raw: Any) -> BreakerTicket:
        allowed, state, ticket, retry = list(raw)
        return BreakerTicket(flag(allowed), string(state), text(ticket), integer(retry))

    return Cmd(("CB.ALLOW", name), parse)


def cb_report(name: str, ticket: str, success: bool, latency_ms: Optional[int] = None) -> Cmd[BreakerReport]:
    args: List[Arg] = ["CB.REPORT", name, ticket, "ok" if success else "fail"]
    if latency_ms is not None:
        args.append(max(0, latency_ms))

    def parse(raw: Any) -> BreakerReport:
        counted, state = list(raw)
        return BreakerReport(flag(counted), string(state))

    return Cmd(tuple(args), parse)


def cb_state(name: str) -> Cmd[BreakerState]:
    def parse(raw: Any) -> BreakerState:
        m = mapping(raw)
        return BreakerState(
            state=string(m["state"]),
            forced=text(m.get("forced")),
            calls=integer(m["calls"]),
            failures=integer(m["failures"]),
            slow=integer(m["slow"]),
            next_transition_ms=integer(m["next_transition_ms"]),
            generation=integer(m["generation"]),
            probes_issued=integer(m["probes_issued"]),
        )

    return Cmd(("CB.STATE", name), parse)


def cb_force(name: str, mode: str) -> Cmd[bool]:
    if mode not in ("open", "closed", "auto"):
        raise ValueError("mode must be 'open', 'closed' or 'auto'")
    return Cmd(("CB.FORCE", name, mode), ok)


_CB_OPTIONS: Tuple[Tuple[str, str], ...] = (
    ("window", "WINDOW"),
    ("min_calls", "MIN-CALLS"),
    ("failure_rate", "FAILURE-RATE"),
    ("slow_ms", "SLOW-MS"),
    ("slow_rate", "SLOW-RATE"),
    ("open_ms", "OPEN-MS"),
    ("probes", "PROBES"),
)


def cb_config(name: str, settings: Dict[str, Optional[float]]) -> Cmd[BreakerPolicy]:
    args: List[Arg] = ["CB.CONFIG", name]
    for attribute, option in _CB_OPTIONS:
        value = settings.get(attribute)
        if value is not None:
            args += [option, _decimal(value) if isinstance(value, float) else value]

    def parse(raw: Any) -> BreakerPolicy:
        m = mapping(raw)
        return BreakerPolicy(
            window=integer(m["window"]),
            min_calls=integer(m["min_calls"]),
            failure_rate=number(m["failure_rate"]),
            slow_ms=integer(m["slow_ms"]),
            slow_rate=number(m["slow_rate"]),
            open_ms=integer(m["open_ms"]),
            probes=integer(m["probes"]),
        )

    return Cmd(tuple(args), parse)


# --------------------------------------------------------------------------- introspection


def stats() -> Cmd[Dict[str, Any]]:
    def parse(raw: Any) -> Dict[str, Any]:
        return {k: (text(v) if isinstance(v, bytes) else v) for k, v in mapping(raw).items()}

    return Cmd(("STATS",), parse)


def ping() -> Cmd[bool]:
    return Cmd(("PING",), ok)
