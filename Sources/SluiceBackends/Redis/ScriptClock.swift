import NIOCore

/// Whose clock a shared-mode script decides by.
public enum ScriptClock: Sendable {
    /// Redis's TIME: one clock for every instance (production).
    case redis
    /// The `now` the caller passes: lets the differential tests move time by hand.
    case caller

    /// The script's `now` argument: empty means "use TIME".
    func argument(_ now: Int64) -> ByteBuffer {
        switch self {
        case .redis: return ByteBuffer()
        case .caller: return ByteBuffer(string: String(now))
        }
    }
}
