/// What `RL.SETTLE` did: tokens charged (positive) or refunded (negative), and what is left.
public struct Settlement: Sendable, Hashable {
    public var delta: Int64
    /// -1: tokens are not limited on that key.
    public var remainingTokens: Int64

    public init(delta: Int64, remainingTokens: Int64) {
        self.delta = delta
        self.remainingTokens = remainingTokens
    }
}
