/// What `CB.REPORT` did: whether the outcome counted, and the breaker's state after it.
public struct BreakerReport: Sendable, Hashable {
    public var counted: Bool
    public var state: CircuitBreaker.State

    public init(counted: Bool, state: CircuitBreaker.State) {
        self.counted = counted
        self.state = state
    }
}
