/// Per-breaker thresholds. Defaults suit LLM upstreams, whose normal calls take seconds.
/// The ranges are enforced where a client sets them (``BreakerPolicyChange``); within them no
/// arithmetic on a policy can overflow.
public struct BreakerPolicy: Sendable, Hashable {
    /// Outcomes remembered (count-based sliding window).
    public var window = 20
    /// No decision before this many outcomes are in the window.
    public var minimumCalls = 10
    /// Open when failures / calls in the window reach this.
    public var failureRate = 0.5
    /// A call slower than this counts as slow...
    public var slowCallMilliseconds: Int64 = 30_000
    /// ...and the breaker opens when slow calls / calls reach this (1.0 = only if all are slow).
    public var slowCallRate = 1.0
    /// How long OPEN refuses before letting probes through.
    public var openMilliseconds: Int64 = 30_000
    /// Probe calls allowed in HALF_OPEN.
    public var probes = 3

    public init() {}

    /// Allowed values (inclusive) for the counts: window, minimum calls, probes.
    public static let countRange = 1...10_000
    /// Allowed values (inclusive) for durations in ms: slow-call threshold, open time (a week).
    public static let millisecondsRange: ClosedRange<Int64> = 1...(7 * 24 * 3_600_000)

    public mutating func apply(_ change: BreakerPolicyChange) {
        if let v = change.window { window = v }
        if let v = change.minimumCalls { minimumCalls = v }
        if let v = change.failureRate { failureRate = v }
        if let v = change.slowCallMilliseconds { slowCallMilliseconds = v }
        if let v = change.slowCallRate { slowCallRate = v }
        if let v = change.openMilliseconds { openMilliseconds = v }
        if let v = change.probes { probes = v }
    }
}
