/// What a semantic entry's answer is worth (`SEM.SET ... TOKENS n COST c TAG t`): counted as
/// saved, under its tag, each time the entry answers a lookup.
public struct AnswerWorth: Sendable, Hashable {
    public var tokens: Int64
    public var cost: Double
    /// ``SavingsTags`` id (0: none).
    public var tag: UInt16

    public static let none = AnswerWorth()

    public init(tokens: Int64 = 0, cost: Double = 0, tag: UInt16 = 0) {
        self.tokens = tokens
        self.cost = cost
        self.tag = tag
    }

    public var countsSavings: Bool { tokens != 0 || cost != 0 || tag != 0 }
}
