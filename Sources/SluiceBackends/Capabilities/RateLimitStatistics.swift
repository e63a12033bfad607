import SluiceDomain

/// The rate limiter's numbers for STATS.
public struct RateLimitStatistics: Sendable {
    /// This process's buckets, slots and budgets.
    public var local: RateLimiter.Summary
    /// Buckets are decided in Redis for every instance.
    public var shared: Bool
    /// Decisions made without Redis (`--limits-when-redis-down`), breakers' included.
    public var fallbacks: Int
    /// Shared mode: this instance follows its slot-grant channel, and how many RL.ACQUIREs of
    /// its clients wait in the shared queues.
    public var slotsSubscribed = false
    public var slotWaiters = 0

    public init(local: RateLimiter.Summary, shared: Bool, fallbacks: Int) {
        self.local = local
        self.shared = shared
        self.fallbacks = fallbacks
    }
}
