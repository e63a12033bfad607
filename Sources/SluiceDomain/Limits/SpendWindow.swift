/// A spend budget of one key over its current window (`RL.SPEND`): e.g. dollars per UTC day.
public struct SpendWindow: Sendable, Hashable {
    public var spent: Money
    public var budget: Money
    /// Wall-clock ms at which the window ends (a calendar boundary, or a rolling window's end).
    public var endsAt: Int64
    public var period: BudgetPeriod
    /// The near-budget signal was given in this window (it is given once per window).
    public var warned = false
    /// The fraction of the budget from which the window is "near" (the latest spend's).
    public var nearFraction = 0.8

    public init(spent: Money, budget: Money, endsAt: Int64, period: BudgetPeriod, warned: Bool = false, nearFraction: Double = 0.8) {
        self.spent = spent
        self.budget = budget
        self.endsAt = endsAt
        self.period = period
        self.warned = warned
        self.nearFraction = nearFraction
    }

    public var remaining: Money { budget > spent ? budget - spent : .zero }

    /// Whether `spent` has reached `fraction` of a budget above zero.
    public func isNear(_ fraction: Double) -> Bool {
        budget.micros > 0 && spent >= Self.nearThreshold(budget: budget, fraction: fraction)
    }

    /// The spend from which a budget is near: `fraction` of it, rounded up to a micro-unit. An
    /// integer, so the shared mode's script compares exactly what this does.
    public static func nearThreshold(budget: Money, fraction: Double) -> Money {
        let t = (max(min(fraction, 1), 0) * Double(budget.micros)).rounded(.up)
        return Money(micros: min(Int64(t), budget.micros))
    }
}
