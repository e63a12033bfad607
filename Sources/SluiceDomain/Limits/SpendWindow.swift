/// A spend budget of one key over its current window (`RL.SPEND`): e.g. dollars per UTC day.
public struct SpendWindow: Sendable, Hashable {
    public var spent: Money
    public var budget: Money
    /// Wall-clock ms at which the window ends (a calendar boundary, or a rolling window's end).
    public var endsAt: Int64
    public var period: BudgetPeriod
    /// The near-budget signal was given in this window (it is given once per window).
    public var warned = false

    public var remaining: Money { budget > spent ? budget - spent : .zero }

    /// Whether `spent` has reached `fraction` of the budget (a budget of 0 is always near).
    public func isNear(_ fraction: Double) -> Bool {
        Double(spent.micros) >= fraction * Double(budget.micros)
    }
}
