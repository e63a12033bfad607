/// Concurrency slots of one key (`RL.ACQUIRE` / `RL.RELEASE`): at most `limit` holders at once.
/// Each slot expires, so a holder that crashed cannot keep it forever.
public struct SlotPool: Sendable, Hashable {
    /// Slot id → expiry.
    public var holders: [UInt64: Int64] = [:]

    public mutating func dropExpired(now: Int64) {
        holders = holders.filter { $0.value > now }
    }

    /// Ms until the first slot frees by expiry (a release may come sooner).
    public func untilFirstExpiry(now: Int64) -> Int64 {
        max((holders.values.min() ?? now) - now, 0)
    }
}
