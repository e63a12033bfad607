#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in milliseconds since the Unix epoch. Injected everywhere time matters so
/// tests move time by hand instead of sleeping.
public protocol WallClock: Sendable {
    func nowMilliseconds() -> Int64
}

public struct SystemClock: WallClock {
    public init() {}

    @inlinable
    public func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
