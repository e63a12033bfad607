/// Concurrency slots of one key (`RL.ACQUIRE` / `RL.RELEASE`): at most `limit` holders at once.
/// Each slot expires, so a holder that crashed cannot keep it forever.
public struct SlotPool: Sendable, Hashable {
    /// Slot id → expiry.
    public private(set) var holders: [UInt64: Int64] = [:]
    /// No holder expires before this (a lower bound: a release does not raise it), so an
    /// acquire scans the holders only when one of them may really have expired.
    var earliestExpiry: Int64 = .max

    public init() {}

    public mutating func add(_ slot: UInt64, expiresAt: Int64) {
        holders[slot] = expiresAt
        earliestExpiry = min(earliestExpiry, expiresAt)
    }

    /// The slot's expiry, if it was held.
    public mutating func remove(_ slot: UInt64) -> Int64? {
        holders.removeValue(forKey: slot)
    }

    /// Drops the expired holders; how many.
    @discardableResult
    public mutating func dropExpired(now: Int64) -> Int {
        guard earliestExpiry <= now else { return 0 }
        let before = holders.count
        holders = holders.filter { $0.value > now }
        earliestExpiry = holders.values.min() ?? .max
        return before - holders.count
    }

    /// Ms until the first slot frees by expiry (a release may come sooner).
    public func untilFirstExpiry(now: Int64) -> Int64 {
        max((holders.values.min() ?? now) - now, 0)
    }
}
