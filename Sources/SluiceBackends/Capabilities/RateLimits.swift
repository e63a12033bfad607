import NIOCore
import SluiceDomain

/// Rate limits: RPM/TPM token buckets with reservations (`RL.TAKE/RESERVE/SETTLE/PEEK`),
/// concurrency slots (`RL.ACQUIRE/RELEASE`) and spend budgets (`RL.SPEND`). The RL.* commands
/// are written once against this.
///
/// Implementations: ``EmbeddedRateLimits`` (this process's buckets), ``RedisRateLimits`` (one
/// bucket per key for every instance, decided in Redis by `Lua/token_bucket.lua`) and
/// ``FallbackRateLimits``, the `--limits-when-redis-down` policy around the Redis one.
public protocol RateLimits: Sendable {
    /// Checks and charges one request and `tokens` tokens, both or neither.
    func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>>

    /// ``take`` with an estimate, remembered under an id for ``settle``.
    func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<ReservationDecision, LimitError>>

    /// Charges or refunds the difference between the actual tokens and the estimate.
    func settle(id: UInt64, actual: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Settlement, LimitError>>

    /// A key's buckets without charging; nil when it has none (never used, or full again).
    func peek(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<LimitSnapshot?>

    /// Empties a key's buckets and holds them for `ms` (a provider's 429 `Retry-After`).
    func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>>

    /// Aligns a key's buckets with the provider's own counts; nil when the key has no bucket
    /// and the report names no limits.
    func sync(_ key: ByteBuffer, _ report: ProviderLimits, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision?, LimitError>>

    /// One of `request.limit` concurrency slots of `key`. With a WAIT the answer may come
    /// later: the request waits in the key's priority queue, holding no thread, until a slot is
    /// granted to it or the wait ends (answered as not granted).
    func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>>

    /// Takes a waiting request (by its ticket) out of the queue: its client went away.
    func cancelWait(_ key: ByteBuffer, ticket: UInt64)

    /// true: the slot was held and is free now.
    func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool>

    /// Spends the request's amount of its budget in the current window (wall-clock `now`).
    func spend(_ key: ByteBuffer, _ request: SpendRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>>

    /// A key's budget window (`RL.BUDGET`); nil when it has no live one.
    func budget(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<SpendWindow?>

    func statistics() -> RateLimitStatistics

    /// The spend budgets (RL.SPEND) closest to their limit, this instance's: the dashboard's.
    func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse]
}
