/// What `RL.ACQUIRE` decided.
public struct SlotDecision: Sendable, Hashable {
    public var acquired: Bool
    public var slot: UInt64?
    public var inUse: Int
    /// 0 when acquired; else until the first held slot expires.
    public var retryAfter: Int64
}
