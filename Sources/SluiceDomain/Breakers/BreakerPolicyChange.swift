/// Some fields of a ``BreakerPolicy`` to change (`CB.CONFIG`); nil = keep.
public struct BreakerPolicyChange: Sendable, Hashable {
    public var window: Int?
    public var minimumCalls: Int?
    public var failureRate: Double?
    public var slowCallMilliseconds: Int64?
    public var slowCallRate: Double?
    public var openMilliseconds: Int64?
    public var probes: Int?

    public init(window: Int? = nil, minimumCalls: Int? = nil, failureRate: Double? = nil, slowCallMilliseconds: Int64? = nil,
                slowCallRate: Double? = nil, openMilliseconds: Int64? = nil, probes: Int? = nil) {
        self.window = window
        self.minimumCalls = minimumCalls
        self.failureRate = failureRate
        self.slowCallMilliseconds = slowCallMilliseconds
        self.slowCallRate = slowCallRate
        self.openMilliseconds = openMilliseconds
        self.probes = probes
    }

    public var isEmpty: Bool { self == BreakerPolicyChange() }
}
