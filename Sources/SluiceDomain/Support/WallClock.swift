/// Wall-clock time in milliseconds since the Unix epoch. Injected everywhere time matters so
/// tests move time by hand instead of sleeping.
public protocol WallClock: Sendable {
    func nowMilliseconds() -> Int64
}
