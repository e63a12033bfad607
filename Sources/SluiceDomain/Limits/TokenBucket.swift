/// A continuously refilling token bucket in exact integer arithmetic.
///
/// The level is kept in units of 1/60,000 token, so that a budget of `perMinute` tokens per
/// minute refills exactly `perMinute` units per millisecond: no floating point, and
/// `retry_after` / `reset` are exact to the millisecond (rounded up). The level may go below
/// zero — debt from a settled reservation that used more than it reserved — and then callers
/// wait until the debt is refilled.
///
/// Bounds: rates, sizes and amounts are at most ``maxTokens`` (checked where clients send
/// them) and debt stops at ``floorUnits``, so every intermediate value stays below 2⁵³ — exact
/// in this Int64 arithmetic *and* in the doubles of `Lua/token_bucket.lua`, the same bucket in
/// shared mode (`TokenBucketDifferentialTests` compares the two step by step).
public struct TokenBucket: Sendable, Hashable {
    public static let unit: Int64 = 60_000
    /// Largest rate, bucket size or token amount a client may use.
    public static let maxTokens: Int64 = 10_000_000_000
    /// Lowest level: debt beyond ``maxTokens`` tokens is not recorded.
    public static let floorUnits: Int64 = -maxTokens * unit

    public private(set) var perMinute: Int64
    /// Most tokens the bucket holds (the burst).
    public private(set) var capacity: Int64
    /// In units; starts full.
    public private(set) var level: Int64
    public private(set) var updatedAt: Int64

    public init(perMinute: Int64, capacity: Int64, now: Int64) {
        self.perMinute = perMinute
        self.capacity = capacity
        self.level = capacity * Self.unit
        self.updatedAt = now
    }

    var capacityUnits: Int64 { capacity * Self.unit }

    /// Adds what flowed in since the last update.
    public mutating func refill(now: Int64) {
        guard now > updatedAt else { return }
        if level < capacityUnits && perMinute > 0 {
            let missing = capacityUnits - level
            let elapsed = now - updatedAt
            // Elapsed time beyond "full" adds nothing (and must not overflow).
            level = elapsed >= (missing + perMinute - 1) / perMinute ? capacityUnits : level + elapsed * perMinute
        }
        updatedAt = now
    }

    /// Whole tokens available now (0 when in debt).
    public var remaining: Int64 { level > 0 ? level / Self.unit : 0 }

    /// Milliseconds until `tokens` are available (0 = now). Call after ``refill(now:)``.
    public func wait(for tokens: Int64) -> Int64 {
        let need = tokens * Self.unit
        if level >= need { return 0 }
        guard perMinute > 0 else { return .max }
        return (need - level + perMinute - 1) / perMinute
    }

    /// Milliseconds until the bucket is full again. Call after ``refill(now:)``.
    public var untilFull: Int64 {
        guard level < capacityUnits else { return 0 }
        guard perMinute > 0 else { return .max }
        return (capacityUnits - level + perMinute - 1) / perMinute
    }

    /// Takes tokens out; the level may go into debt, down to ``floorUnits``.
    public mutating func charge(_ tokens: Int64) { level = max(level - tokens * Self.unit, Self.floorUnits) }

    /// Gives tokens back, never above capacity.
    public mutating func refund(_ tokens: Int64) { level = min(capacityUnits, level + tokens * Self.unit) }

    /// Ms the bucket is still held (``hold(until:)``) at `now`: nothing flows in and nothing is
    /// allowed until then.
    public func heldFor(now: Int64) -> Int64 { max(updatedAt - now, 0) }

    /// Holds the bucket until `until` (RL.PENALIZE, RL.SYNC): refilling resumes from there, so
    /// an emptied bucket is still empty when the hold ends rather than full of what would have
    /// flowed in meanwhile (no burst at the moment a provider's Retry-After ends). A later
    /// hold never shortens an earlier one.
    public mutating func hold(until: Int64) { if until > updatedAt { updatedAt = until } }

    /// Empties the bucket; debt it had stays.
    public mutating func empty() { level = min(level, 0) }

    /// Sets what the bucket holds to `tokens` (the provider's own count), at most its capacity.
    /// Debt is replaced too: the provider's count is the truth.
    public mutating func align(to tokens: Int64) { level = min(max(tokens, 0), capacity) * Self.unit }

    /// New limits for an existing bucket: what it holds is kept, capped at the new capacity.
    public mutating func reconfigure(perMinute: Int64, capacity: Int64) {
        guard perMinute != self.perMinute || capacity != self.capacity else { return }
        self.perMinute = perMinute
        self.capacity = capacity
        level = min(level, capacityUnits)
    }
}
