#if canImport(Glibc)
import Glibc
#endif

/// The machine's clocks: CLOCK_REALTIME and CLOCK_MONOTONIC.
public struct SystemClock: TimeSource {
    public init() {}

    @inlinable
    public func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    @inlinable
    public func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
