/// A spend budget of one key over a fixed window (`RL.SPEND`), e.g. dollars per day.
public struct SpendWindow: Sendable, Hashable {
    public var spent: Double
    public var budget: Double
    public var endsAt: Int64
}
