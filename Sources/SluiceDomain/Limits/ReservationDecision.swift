/// What `RL.RESERVE` decided: the decision, and the reservation's id when it was allowed.
public struct ReservationDecision: Sendable, Hashable {
    public var decision: LimitDecision
    /// Names the reservation for `RL.SETTLE`; nil when refused.
    public var id: UInt64?

    public init(decision: LimitDecision, id: UInt64?) {
        self.decision = decision
        self.id = id
    }
}
