import NIOCore

/// One shard of the rate limiter: the buckets of its keys and the reservations made on them.
/// A plain value: the caller passes `now` and holds the lock.
public struct RateLimiterShard: Sendable {
    public struct Limits: Sendable, Hashable {
        public var requests: TokenBucket
        public var tokens: TokenBucket
        public var spec: LimitSpec
        /// Open reservations; a key with some is never reclaimed.
        public var reservations: Int
    }

    public struct Reservation: Sendable, Hashable {
        public var key: ByteBuffer
        public var tokens: Int64
        public var expiresAt: Int64
    }

    public var limits: [ByteBuffer: Limits] = [:]
    public var reservations: [UInt64: Reservation] = [:]
    public var slots: [ByteBuffer: SlotQueue] = [:]
    /// Slots held and waiters across all of `slots`, bounded by `maxKeys`.
    public internal(set) var slotsHeld = 0
    /// Aging of slot waiters: one priority level per this many ms waited.
    public var slotAgingInterval: Int64 = 1_000
    /// Waiters one key's queue holds at most.
    public var maxWaitersPerKey = 10_000
    public var budgets: [ByteBuffer: SpendWindow] = [:]
    public let maxKeys: Int
    public var counters = Counters()

    public struct Counters: Sendable, Hashable {
        public var allowed = 0
        public var denied = 0
        public var reservationsExpired = 0
        public var keysReclaimed = 0
    }

    public init(maxKeys: Int) {
        self.maxKeys = maxKeys
    }

    /// Checks both budgets for 1 request and `tokens` tokens, and charges both or neither.
    public mutating func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64) -> Result<LimitDecision, LimitError> {
        if let impossible = spec.impossibility(tokens: tokens) { return .failure(impossible) }
        let existing = limits.index(forKey: key)
        guard var entry = existing.map({ limits.values[$0] }) ?? newLimits(spec, now: now) else {
            return .failure(.tooManyKeys(limit: maxKeys))
        }
        // Time until now flowed in at the limits in force until now; this request's apply from here.
        entry.requests.refill(now: now)
        entry.tokens.refill(now: now)
        entry.requests.reconfigure(perMinute: spec.requestsPerMinute, capacity: spec.requestBurst)
        entry.tokens.reconfigure(perMinute: spec.tokensPerMinute, capacity: spec.tokenBurst)
        entry.spec = spec
        let waitRequests = spec.requestsPerMinute > 0 ? entry.requests.wait(for: 1) : 0
        let waitTokens = spec.tokensPerMinute > 0 ? entry.tokens.wait(for: tokens) : 0
        let allowed = waitRequests == 0 && waitTokens == 0
        if allowed {
            if spec.requestsPerMinute > 0 { entry.requests.charge(1) }
            if spec.tokensPerMinute > 0 { entry.tokens.charge(tokens) }
            counters.allowed += 1
        } else {
            counters.denied += 1
        }
        if let existing {
            limits.values[existing] = entry  // the stored key stays; no copy per request
        } else {
            limits[ByteBuffer.owned(key)] = entry
        }
        return .success(Self.decision(entry, allowed: allowed, retryAfter: max(waitRequests, waitTokens)))
    }

    /// Takes like ``take`` with `estimate` tokens and, if allowed, records a reservation
    /// `id` to settle later. It expires at `expiresAt`, charged at its estimate.
    public mutating func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, id: UInt64, expiresAt: Int64, now: Int64) -> Result<LimitDecision, LimitError> {
        // Each open reservation is an entry: at most `maxKeys` of them per shard.
        guard reservations.count < maxKeys else { return .failure(.tooManyReservations(limit: maxKeys)) }
        let result = take(key, spec: spec, tokens: estimate, now: now)
        if case .success(let d) = result, d.allowed {
            let owned = ByteBuffer.owned(key)
            reservations[id] = Reservation(key: owned, tokens: estimate, expiresAt: expiresAt)
            limits[owned]?.reservations += 1
        }
        return result
    }

    /// Charges (actual > estimate) or refunds (actual < estimate) the difference. Returns the
    /// difference and the tokens left. A bucket may go into debt here; it is never forgiven.
    public mutating func settle(id: UInt64, actual: Int64, now: Int64) -> Result<Settlement, LimitError> {
        guard let r = reservations[id], r.expiresAt > now else {
            if reservations[id] != nil { expire(id) }
            return .failure(.unknownReservation)
        }
        reservations[id] = nil
        guard var entry = limits[r.key] else { return .failure(.unknownReservation) }
        entry.reservations -= 1
        entry.requests.refill(now: now)
        entry.tokens.refill(now: now)
        let delta = actual - r.tokens
        if entry.spec.tokensPerMinute > 0 {
            if delta > 0 { entry.tokens.charge(delta) } else if delta < 0 { entry.tokens.refund(-delta) }
        }
        limits[r.key] = entry
        return .success(Settlement(delta: delta, remainingTokens: entry.spec.tokensPerMinute > 0 ? entry.tokens.remaining : -1))
    }

    /// State without charging; nil when the key has no bucket (never used, or reclaimed: full).
    public mutating func peek(_ key: ByteBuffer, now: Int64) -> (LimitDecision, LimitSpec)? {
        guard var entry = limits[key] else { return nil }
        entry.requests.refill(now: now)
        entry.tokens.refill(now: now)
        limits[key] = entry
        let wait = max(entry.spec.requestsPerMinute > 0 ? entry.requests.wait(for: 1) : 0,
                       entry.spec.tokensPerMinute > 0 ? entry.tokens.wait(for: 0) : 0)
        return (Self.decision(entry, allowed: wait == 0, retryAfter: wait), entry.spec)
    }

    /// Drops expired reservations (they stay charged) and buckets that are full again and have
    /// no open reservation: such a bucket is the same as no bucket.
    public mutating func sweep(now: Int64) {
        for (id, r) in reservations where r.expiresAt <= now { expire(id) }
        let before = limits.count
        limits = limits.filter { _, entry in
            var e = entry
            e.requests.refill(now: now)
            e.tokens.refill(now: now)
            return e.reservations > 0 || e.requests.untilFull > 0 || e.tokens.untilFull > 0
        }
        counters.keysReclaimed += before - limits.count
        sweepSlotsAndBudgets(now: now)
    }

    mutating func expire(_ id: UInt64) {
        guard let r = reservations.removeValue(forKey: id) else { return }
        limits[r.key]?.reservations -= 1
        counters.reservationsExpired += 1
    }

    func newLimits(_ spec: LimitSpec, now: Int64) -> Limits? {
        guard limits.count < maxKeys else { return nil }
        return Limits(requests: TokenBucket(perMinute: spec.requestsPerMinute, capacity: spec.requestBurst, now: now),
                      tokens: TokenBucket(perMinute: spec.tokensPerMinute, capacity: spec.tokenBurst, now: now),
                      spec: spec, reservations: 0)
    }

    static func decision(_ e: Limits, allowed: Bool, retryAfter: Int64) -> LimitDecision {
        let limitedRequests = e.spec.requestsPerMinute > 0, limitedTokens = e.spec.tokensPerMinute > 0
        return LimitDecision(
            allowed: allowed,
            remainingRequests: limitedRequests ? e.requests.remaining : -1,
            remainingTokens: limitedTokens ? e.tokens.remaining : -1,
            retryAfter: allowed ? 0 : retryAfter,
            reset: max(limitedRequests ? e.requests.untilFull : 0, limitedTokens ? e.tokens.untilFull : 0))
    }
}
