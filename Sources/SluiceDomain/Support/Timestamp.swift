/// One moment on both clocks (see ``TimeSource``).
public struct Timestamp: Sendable, Hashable {
    /// Milliseconds since the Unix epoch.
    public var wall: Int64
    /// Monotonic milliseconds.
    public var monotonic: Int64

    @inlinable
    public init(wall: Int64, monotonic: Int64) {
        self.wall = wall
        self.monotonic = monotonic
    }
}
