import Histogram

/// One event loop's command latencies since the dashboard last sampled them, in µs. Touched
/// only on its own loop (recorded by that loop's connections, taken by a task submitted to
/// it), so it needs no lock; HdrHistogram gives its percentiles.
final class LatencyWindow: @unchecked Sendable {
    /// A minute: anything longer is recorded as a minute.
    static let highest: UInt64 = 60_000_000
    private var histogram = LatencyWindow.empty()

    static func empty() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: highest, numberOfSignificantValueDigits: .two)
    }

    @inline(__always)
    func record(nanoseconds: UInt64) {
        _ = histogram.record(min(nanoseconds / 1000, Self.highest))
    }

    /// What was recorded since the last call; starts again from nothing.
    func take() -> Histogram<UInt64> {
        let taken = histogram
        histogram = Self.empty()
        return taken
    }
}
