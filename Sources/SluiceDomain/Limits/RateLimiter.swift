import NIOCore

/// All rate-limit keys of this process, sharded by key hash.
public final class RateLimiter: Sendable {
    @usableFromInline let shards: Sharded<RateLimiterShard>
    public let hasher: KeyHasher
    /// An unsettled reservation expires after this long, charged at its estimate.
    public let reservationTTL: Int64
    public let maxKeys: Int

    public init(maxKeys: Int = 1_000_000, reservationTTL: Int64 = 10 * 60 * 1000, shardCount: Int = 64, hasher: KeyHasher = KeyHasher(),
                slotAgingInterval: Int64 = 1_000) {
        let n = max(shardCount, 1)
        // The bound is shared out evenly; a shard refuses new keys past its share.
        shards = Sharded(count: n) { _ in
            var shard = RateLimiterShard(maxKeys: max(maxKeys / n, 1))
            shard.slotAgingInterval = max(slotAgingInterval, 1)
            shard.maxWaitersPerKey = min(shard.maxWaitersPerKey, shard.maxKeys)
            return shard
        }
        self.hasher = hasher
        self.reservationTTL = reservationTTL
        self.maxKeys = maxKeys
    }

    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64) -> Result<LimitDecision, LimitError> {
        shards.withShard(hash: hasher.hash(key)) { $0.take(key, spec: spec, tokens: tokens, now: now) }
    }

    /// The reservation id names its shard in its low bits, so SETTLE finds it from the id alone.
    public func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64) -> (Result<LimitDecision, LimitError>, UInt64) {
        let shard = shards.index(for: hasher.hash(key))
        let mask = UInt64(shards.count - 1)
        let id = (RandomID.next() & ~mask) | UInt64(shard)
        let result = shards.withShard(at: shard) {
            $0.reserve(key, spec: spec, estimate: estimate, id: id, expiresAt: now + reservationTTL, now: now)
        }
        return (result, id)
    }

    public func settle(id: UInt64, actual: Int64, now: Int64) -> Result<Settlement, LimitError> {
        shards.withShard(at: Int(id & UInt64(shards.count - 1))) { $0.settle(id: id, actual: actual, now: now) }
    }

    public func peek(_ key: ByteBuffer, now: Int64) -> (LimitDecision, LimitSpec)? {
        shards.withShard(hash: hasher.hash(key)) { $0.peek(key, now: now) }
    }

    public func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64) -> Result<LimitDecision, LimitError> {
        shards.withShard(hash: hasher.hash(key)) { $0.penalize(key, for: ms, now: now) }
    }

    public func sync(_ key: ByteBuffer, _ report: ProviderLimits, now: Int64) -> Result<LimitDecision?, LimitError> {
        shards.withShard(hash: hasher.hash(key)) {
            $0.sync(key, remainingRequests: report.remainingRequests, remainingTokens: report.remainingTokens, reset: report.reset,
                    spec: report.spec, now: now)
        }
    }

    /// See ``RateLimiterShard/acquire(_:limit:slot:priority:wait:lease:now:)``: the request's
    /// ticket is its slot id.
    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64) -> SlotTransition<Result<SlotQueue.Outcome, LimitError>> {
        shards.withShard(hash: hasher.hash(key)) {
            $0.acquire(key, limit: request.limit, slot: request.ticket, priority: request.priority, wait: request.wait,
                       lease: request.lease, now: now)
        }
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64) -> SlotTransition<Bool> {
        shards.withShard(hash: hasher.hash(key)) { $0.release(key, slot: slot, now: now) }
    }

    public func tickSlots(_ key: ByteBuffer, now: Int64) -> SlotTransition<[UInt64]> {
        shards.withShard(hash: hasher.hash(key)) { $0.tickSlots(key, now: now) }
    }

    public func cancelWait(_ key: ByteBuffer, waiter: UInt64) -> SlotTransition<Bool> {
        shards.withShard(hash: hasher.hash(key)) { $0.cancelWait(key, waiter: waiter) }
    }

    public func spend(_ key: ByteBuffer, amount: Money, budget: Money, period: BudgetPeriod, near: Double, now: Int64) -> Result<SpendDecision, LimitError> {
        shards.withShard(hash: hasher.hash(key)) { $0.spend(key, amount: amount, budget: budget, period: period, near: near, now: now) }
    }

    public func budget(_ key: ByteBuffer, now: Int64) -> SpendWindow? {
        shards.withShard(hash: hasher.hash(key)) { $0.budget(key, now: now) }
    }

    public func sweep(shard index: Int, now: Int64) {
        shards.withShard(at: index) { $0.sweep(now: now) }
    }

    public var shardCount: Int { shards.count }

    public struct Summary: Sendable, Hashable {
        public var counters = RateLimiterShard.Counters()
        public var keys = 0
        public var reservations = 0
        public var slotKeys = 0
        public var slotsHeld = 0
        public var budgetKeys = 0
    }

    /// One spend budget's window.
    public struct BudgetUse: Sendable, Hashable {
        public var key: String
        public var spent: Double
        public var budget: Double
        /// ms until the window ends.
        public var resetsIn: Int64
    }

    /// The `n` live budgets with the largest share spent (one shard locked at a time).
    public func budgetsMostUsed(_ n: Int, now: Int64) -> [BudgetUse] {
        var top: [(share: Double, key: ByteBuffer, window: SpendWindow)] = []
        func share(_ w: SpendWindow) -> Double {
            w.budget.micros > 0 ? Double(w.spent.micros) / Double(w.budget.micros) : (w.spent.micros > 0 ? .infinity : 0)
        }
        shards.forEach { shard in
            for (key, window) in shard.budgets where window.endsAt > now {
                // Only the n kept so far are held on to (their keys are turned into text at the end).
                let s = share(window)
                if top.count < n {
                    top.append((s, key, window))
                } else if let i = top.indices.min(by: { top[$0].share < top[$1].share }), top[i].share < s {
                    top[i] = (s, key, window)
                }
            }
        }
        return top.sorted { $0.share > $1.share }.map {
            BudgetUse(key: String(decoding: $0.key.readableBytesView.prefix(200), as: UTF8.self), spent: $0.window.spent.units,
                      budget: $0.window.budget.units, resetsIn: $0.window.endsAt - now)
        }
    }

    public func summary() -> Summary {
        var s = Summary()
        shards.forEach { shard in
            s.keys += shard.limits.count
            s.slotKeys += shard.slots.count
            s.slotsHeld += shard.slotsHeld
            s.budgetKeys += shard.budgets.count
            s.reservations += shard.reservations.count
            s.counters.allowed += shard.counters.allowed
            s.counters.denied += shard.counters.denied
            s.counters.reservationsExpired += shard.counters.reservationsExpired
            s.counters.keysReclaimed += shard.counters.keysReclaimed
        }
        return s
    }
}
