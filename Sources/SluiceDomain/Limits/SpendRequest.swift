/// One `RL.SPEND`: `amount` against `budget` per `period`, saying "near" from the fraction
/// `near` of the budget.
public struct SpendRequest: Sendable, Hashable {
    public var amount: Money
    public var budget: Money
    public var period: BudgetPeriod
    public var near: Double

    public init(amount: Money, budget: Money, period: BudgetPeriod = .day, near: Double = 0.8) {
        self.amount = amount
        self.budget = budget
        self.period = period
        self.near = near
    }
}
