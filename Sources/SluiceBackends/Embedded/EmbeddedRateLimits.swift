import NIOCore
import SluiceDomain

/// This process's rate limits: the domain's ``RateLimiter`` (sharded buckets, reservations,
/// slots, budgets), answered at once.
public final class EmbeddedRateLimits: RateLimits {
    public let limiter: RateLimiter

    public init(limiter: RateLimiter) {
        self.limiter = limiter
    }

    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        .ready(limiter.take(key, spec: spec, tokens: tokens, now: now))
    }

    public func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<ReservationDecision, LimitError>> {
        let (result, id) = limiter.reserve(key, spec: spec, estimate: estimate, now: now)
        return .ready(result.map { ReservationDecision(decision: $0, id: $0.allowed ? id : nil) })
    }

    public func settle(id: UInt64, actual: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Settlement, LimitError>> {
        .ready(limiter.settle(id: id, actual: actual, now: now))
    }

    public func peek(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<LimitSnapshot?> {
        .ready(limiter.peek(key, now: now).map { LimitSnapshot(decision: $0.0, spec: $0.1) })
    }

    public func acquire(_ key: ByteBuffer, limit: Int, duration: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        .ready(limiter.acquire(key, limit: limit, duration: duration, now: now))
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        .ready(limiter.release(key, slot: slot, now: now))
    }

    public func spend(_ key: ByteBuffer, amount: Double, budget: Double, period: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>> {
        .ready(limiter.spend(key, amount: amount, budget: budget, period: period, now: now))
    }

    public func statistics() -> RateLimitStatistics {
        RateLimitStatistics(local: limiter.summary(), shared: false, fallbacks: 0)
    }

    public func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse] {
        limiter.budgetsMostUsed(n, now: now)
    }
}
