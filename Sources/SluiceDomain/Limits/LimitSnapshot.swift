/// A key's buckets as `RL.PEEK` shows them, without charging anything.
public struct LimitSnapshot: Sendable, Hashable {
    public var decision: LimitDecision
    public var spec: LimitSpec

    public init(decision: LimitDecision, spec: LimitSpec) {
        self.decision = decision
        self.spec = spec
    }
}
