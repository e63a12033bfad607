/// What `RL.SPEND` decided: `[allowed, remaining, reset_ms, near]`.
public struct SpendDecision: Sendable, Hashable {
    public var allowed: Bool
    public var remaining: Money
    /// ms until the window ends.
    public var reset: Int64
    /// Spent has reached the near-budget fraction of the budget (this spend included).
    public var near: Bool
    /// This spend is the one that brought the window near its budget (the log line and the
    /// metric count it once per window).
    public var crossedNear: Bool

    public init(allowed: Bool, remaining: Money, reset: Int64, near: Bool = false, crossedNear: Bool = false) {
        self.allowed = allowed
        self.remaining = remaining
        self.reset = reset
        self.near = near
        self.crossedNear = crossedNear
    }
}
