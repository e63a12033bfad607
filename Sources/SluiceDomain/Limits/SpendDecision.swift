/// What `RL.SPEND` decided.
public struct SpendDecision: Sendable, Hashable {
    public var allowed: Bool
    public var remaining: Double
    public var reset: Int64
}
