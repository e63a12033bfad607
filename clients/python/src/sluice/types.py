"""Typed replies of Sluice's commands and the settings of a guarded LLM call."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Callable, Dict, Optional, Union

# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class CacheEntry:
    """`CACHE.GET key [LEASE ms] [STALE ms]` → `[value, layer, age_ms, lease_token]`."""

    value: Optional[bytes]
    layer: Optional[str]  # "l1", "l2", "stale" or None on a miss
    age_ms: Optional[int]
    lease: Optional[str]  # the token when this caller got the lease on a miss

    @property
    def hit(self) -> bool:
        return self.value is not None

    @property
    def stale(self) -> bool:
        return self.layer == "stale"

    @property
    def text(self) -> Optional[str]:
        return None if self.value is None else self.value.decode("utf-8", "replace")


@dataclass(frozen=True)
class SemanticMatch:
    """`SEM.GET ns prompt ... [WHY]`: the response, its score and the stored prompt it came from.

    Without WHY a miss is `None` rather than a SemanticMatch; with WHY, `why` says why
    (`hit`, `trap: ...`, `below minscore 0.7`, `no entry in this scope`)."""

    response: Optional[bytes]
    score: Optional[float]
    prompt: Optional[str]
    why: Optional[str] = None

    @property
    def hit(self) -> bool:
        return self.response is not None

    @property
    def text(self) -> Optional[str]:
        return None if self.response is None else self.response.decode("utf-8", "replace")


@dataclass(frozen=True)
class LLMAnswer:
    """`LLM.GET ns prompt ...` → `[answer, layer, score, matched_prompt, age_ms, lease_token]` (+ `why`).

    `layer`: "l1" or "l2" (the question's exact key), "semantic" (a paraphrase's entry, now also
    written back under this question's key), "stale", or "miss". `lease`: this caller's lease
    token on a miss with LEASE (it must compute the answer); None for the others."""

    answer: Optional[bytes]
    layer: str
    score: Optional[float]
    matched_prompt: Optional[str]
    age_ms: Optional[int]
    lease: Optional[str]
    why: Optional[str] = None

    @property
    def hit(self) -> bool:
        return self.answer is not None

    @property
    def text(self) -> Optional[str]:
        return None if self.answer is None else self.answer.decode("utf-8", "replace")


@dataclass(frozen=True)
class SemanticFeedback:
    """`SEM.FEEDBACK` → `[entry_prompt, score, threshold, good, bad, deleted]`."""

    entry_prompt: str
    score: float
    threshold: float
    good: int
    bad: int
    deleted: bool


@dataclass(frozen=True)
class NamespaceInfo:
    """`SEM.INFO ns` / `SEM.CONFIG ns ...`."""

    entries: int
    dimension: int
    embedder: str
    min_score: float
    max_entries: int
    hits: int
    misses: int
    traps: int
    evictions: int
    expired: int
    feedback_good: int
    feedback_bad: int
    lists: int


@dataclass(frozen=True)
class TakeResult:
    """`RL.TAKE` → `[allowed, remaining_requests, remaining_tokens, retry_after_ms, reset_ms]`."""

    allowed: bool
    remaining_requests: int
    remaining_tokens: int
    retry_after_ms: int
    reset_ms: int


@dataclass(frozen=True)
class Reservation:
    """`RL.RESERVE` → `[allowed, reservation_id or nil, retry_after_ms]`."""

    allowed: bool
    id: Optional[str]
    retry_after_ms: int


@dataclass(frozen=True)
class Settlement:
    """`RL.SETTLE id actual` → `[difference, remaining_tokens]`."""

    difference: int
    remaining_tokens: int


@dataclass(frozen=True)
class LimitState:
    """`RL.PENALIZE` / `RL.SYNC` → `[remaining_requests, remaining_tokens, retry_after_ms, reset_ms]`.

    -1 in a remaining field: that dimension is not limited (or the key has no bucket yet)."""

    remaining_requests: int
    remaining_tokens: int
    retry_after_ms: int
    reset_ms: int


@dataclass(frozen=True)
class Peek:
    """`RL.PEEK key` → `[remaining_requests, remaining_tokens, retry_after_ms, reset_ms, rpm, tpm]`."""

    remaining_requests: int
    remaining_tokens: int
    retry_after_ms: int
    reset_ms: int
    rpm: int
    tpm: int


@dataclass(frozen=True)
class SlotGrant:
    """`RL.ACQUIRE` → `[granted, slot_id or nil, queue_position, estimated_wait_ms]`."""

    granted: bool
    slot_id: Optional[str]
    queue_position: int
    estimated_wait_ms: int


@dataclass(frozen=True)
class Spend:
    """`RL.SPEND` → `[allowed, remaining, reset_ms, near]`."""

    allowed: bool
    remaining: float
    reset_ms: int
    near: bool


@dataclass(frozen=True)
class BudgetState:
    """`RL.BUDGET key` → `[spent, budget, remaining, reset_ms, period, near]`."""

    spent: float
    budget: float
    remaining: float
    reset_ms: int
    period: str
    near: bool


@dataclass(frozen=True)
class BreakerTicket:
    """`CB.ALLOW name` → `[allowed, state, ticket or nil, retry_after_ms]`."""

    allowed: bool
    state: str
    ticket: Optional[str]
    retry_after_ms: int


@dataclass(frozen=True)
class BreakerReport:
    """`CB.REPORT` → `[counted, state]`."""

    counted: bool
    state: str


@dataclass(frozen=True)
class BreakerState:
    """`CB.STATE name`."""

    state: str
    forced: Optional[str]
    calls: int
    failures: int
    slow: int
    next_transition_ms: int
    generation: int
    probes_issued: int


@dataclass(frozen=True)
class BreakerPolicy:
    """`CB.CONFIG name ...`: the policy in force."""

    window: int
    min_calls: int
    failure_rate: float
    slow_ms: int
    slow_rate: float
    open_ms: int
    probes: int


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Limit:
    """Requests and tokens per minute, stated by the caller on every request (`rpm tpm [BURST r t]`).

    0 means not limited. The bursts are the bucket sizes (default: the per-minute numbers)."""

    rpm: int
    tpm: int
    burst_requests: Optional[int] = None
    burst_tokens: Optional[int] = None


@dataclass(frozen=True)
class Slot:
    """A concurrency slot (`RL.ACQUIRE key max_in_flight PRIORITY p WAIT ms LEASE ms`)."""

    max_in_flight: int
    priority: int = 0
    wait_ms: int = 30_000
    lease_ms: int = 120_000
    key: Optional[str] = None  # default: the limit key


@dataclass(frozen=True)
class Budget:
    """A spend budget (`RL.SPEND key amount BUDGET b PERIOD p`); the call's cost is charged to it."""

    key: str
    budget: Union[float, str]  # an amount, or the name of a [budgets.NAME] policy
    period: Optional[str] = None  # "day", "week", "month" or a number of ms


@dataclass(frozen=True)
class Price:
    """Dollars (or any unit) per million prompt and completion tokens, for COST and budgets."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True)
class Policy:
    """How one guarded LLM call is protected. Every field has a default that works.

    `limit` is a `Limit`, or the name of a `[limits.NAME]` policy in Sluice's config file.
    Keys and the breaker name may contain `{model}`, filled in per call. `breaker=None` and
    `limit=None` turn those steps off — but an upstream 429 still holds `limit_key` for its
    Retry-After, and every call checks that hold, limit or not.

    `lease_ms` is how long one caller may compute an answer while identical calls wait for it:
    it must outlast the upstream's slowest call (else a waiter takes the lease over and asks
    too). `max_wait_s` bounds every wait of a call — for another caller's answer
    (`LeaseWaitTimeout` past it), for the rate limit (`RateLimited`) — and is best kept below
    `lease_ms`. `upstream_failure` decides which exceptions of the body count against the
    breaker and allow a stale answer (default `sluice.is_upstream_failure`: HTTP 5xx and 408,
    timeouts, connection errors)."""

    limit: Union[Limit, str, None] = None
    limit_key: str = "llm:{model}"
    breaker: Optional[str] = "llm:{model}"
    slot: Optional[Slot] = None
    budget: Optional[Budget] = None
    ttl_ms: Optional[int] = 86_400_000
    stale_ms: Optional[int] = None
    lease_ms: int = 60_000
    max_wait_s: float = 30.0
    semantic: bool = True
    min_score: Optional[float] = None
    tag: Optional[str] = None
    price: Optional[Price] = None
    max_429_retries: int = 3
    upstream_failure: Optional[Callable[[BaseException], bool]] = None


# --------------------------------------------------------------------------- counters


@dataclass
class CallStats:
    """What the guarded calls of one client did; thread-safe, cheap to read with `snapshot()`."""

    calls: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    coalesced: int = 0  # answered by another caller's upstream call (lease)
    lease_takeovers: int = 0  # the caller computing the answer gave up; this one took its place
    lease_timeouts: int = 0  # waited max_wait_s for another caller's answer in vain
    stale_served: int = 0
    upstream_calls: int = 0
    upstream_failures: int = 0
    upstream_429s: int = 0
    absorbed_429s: int = 0  # 429s after which the call still succeeded
    breaker_refusals: int = 0
    limit_waits: int = 0
    limit_refusals: int = 0
    budget_refusals: int = 0
    tokens_used: int = 0
    sluice_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    @property
    def saved(self) -> int:
        """Upstream calls not made thanks to the cache."""
        return self.exact_hits + self.semantic_hits + self.coalesced + self.stale_served
