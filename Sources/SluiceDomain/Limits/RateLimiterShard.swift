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
        // A held bucket (RL.PENALIZE, RL.SYNC) allows nothing until its hold ends, and then
        // only what it holds by then.
        let held = entry.requests.heldFor(now: now)
        let waitRequests = spec.requestsPerMinute > 0 ? entry.requests.wait(for: 1) : 0
        let waitTokens = spec.tokensPerMinute > 0 ? entry.tokens.wait(for: tokens) : 0
        let allowed = held == 0 && waitRequests == 0 && waitTokens == 0
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
        return .success(Self.decision(entry, allowed: allowed, retryAfter: held.addingSaturating(max(waitRequests, waitTokens)), now: now))
    }

    /// A provider answered 429 with `Retry-After: ms` (RL.PENALIZE): the key's buckets are
    /// emptied (debt stays) and held for `ms` — nothing is allowed, nothing flows in — and a
    /// longer hold already in force is kept. A key with no bucket gets an empty unlimited one
    /// held alike; the next RL.TAKE sets its limits and it starts empty.
    public mutating func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64) -> Result<LimitDecision, LimitError> {
        let existing = limits.index(forKey: key)
        guard var entry = existing.map({ limits.values[$0] }) ?? newLimits(LimitSpec(requestsPerMinute: 0, tokensPerMinute: 0), now: now) else {
            return .failure(.tooManyKeys(limit: maxKeys))
        }
        entry.requests.refill(now: now)
        entry.tokens.refill(now: now)
        entry.requests.empty()
        entry.tokens.empty()
        entry.requests.hold(until: now.addingSaturating(ms))
        entry.tokens.hold(until: now.addingSaturating(ms))
        limits[ByteBuffer.owned(key)] = entry
        return .success(Self.state(entry, now: now))
    }

    /// The provider's own counts (`x-ratelimit-remaining-*`, RL.SYNC): each known one (nil:
    /// not reported) becomes what the bucket holds, at most its size, for a dimension the key
    /// limits; and when either count is 0 the bucket is held for `reset` ms (the provider
    /// refuses until its window resets). `spec` (optional) sets the limits first, and makes a
    /// bucket for a key that has none; without it such a key is left alone (nil).
    public mutating func sync(_ key: ByteBuffer, remainingRequests: Int64?, remainingTokens: Int64?, reset: Int64, spec: LimitSpec?,
                              now: Int64) -> Result<LimitDecision?, LimitError> {
        let existing = limits.index(forKey: key)
        guard var entry = existing.map({ limits.values[$0] }) ?? spec.flatMap({ newLimits($0, now: now) }) else {
            return spec == nil ? .success(nil) : .failure(.tooManyKeys(limit: maxKeys))
        }
        entry.requests.refill(now: now)
        entry.tokens.refill(now: now)
        if let spec {
            entry.requests.reconfigure(perMinute: spec.requestsPerMinute, capacity: spec.requestBurst)
            entry.tokens.reconfigure(perMinute: spec.tokensPerMinute, capacity: spec.tokenBurst)
            entry.spec = spec
        }
        if let r = remainingRequests, entry.spec.requestsPerMinute > 0 { entry.requests.align(to: r) }
        if let t = remainingTokens, entry.spec.tokensPerMinute > 0 { entry.tokens.align(to: t) }
        if reset > 0 && (remainingRequests == 0 || remainingTokens == 0) {
            entry.requests.hold(until: now.addingSaturating(reset))
            entry.tokens.hold(until: now.addingSaturating(reset))
        }
        limits[ByteBuffer.owned(key)] = entry
        return .success(Self.state(entry, now: now))
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
        return (Self.state(entry, now: now), entry.spec)
    }

    /// A bucket's numbers without charging (call after refilling): allowed when one request
    /// (and no tokens) would be.
    static func state(_ entry: Limits, now: Int64) -> LimitDecision {
        let wait = entry.requests.heldFor(now: now).addingSaturating(max(entry.spec.requestsPerMinute > 0 ? entry.requests.wait(for: 1) : 0,
                                                                         entry.spec.tokensPerMinute > 0 ? entry.tokens.wait(for: 0) : 0))
        return decision(entry, allowed: wait == 0, retryAfter: wait, now: now)
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
            // A bucket RL.PENALIZE made for a key that had none is "full" at size 0 once its
            // hold ends, but must start empty when a take sizes it: kept a minute more, as the
            // shared mode's script keeps its key.
            let unsized = e.requests.capacity == 0 && e.tokens.capacity == 0 && e.requests.updatedAt > now.subtractingSaturating(60_000)
            return e.reservations > 0 || e.requests.untilFull > 0 || e.tokens.untilFull > 0 || e.requests.heldFor(now: now) > 0 || unsized
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

    /// `reset`: until both buckets are full again, a hold included.
    static func decision(_ e: Limits, allowed: Bool, retryAfter: Int64, now: Int64) -> LimitDecision {
        let limitedRequests = e.spec.requestsPerMinute > 0, limitedTokens = e.spec.tokensPerMinute > 0
        return LimitDecision(
            allowed: allowed,
            remainingRequests: limitedRequests ? e.requests.remaining : -1,
            remainingTokens: limitedTokens ? e.tokens.remaining : -1,
            retryAfter: allowed ? 0 : retryAfter,
            reset: e.requests.heldFor(now: now).addingSaturating(max(limitedRequests ? e.requests.untilFull : 0, limitedTokens ? e.tokens.untilFull : 0)))
    }
}
