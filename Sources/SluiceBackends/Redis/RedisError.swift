/// Why Redis could not answer a command.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    case badURL(String)
    /// Not connected (Redis down or restarting): the caller should fall back.
    case unavailable(String)
    /// The connection broke or timed out while the command was in flight.
    case connectionLost(String)
    case shutDown
    /// Redis answered something a script or command never returns (a bug, or not Redis).
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .badURL(let s): return "bad Redis URL: \(s)"
        case .unavailable(let s): return "Redis unavailable: \(s)"
        case .connectionLost(let s): return "Redis connection lost: \(s)"
        case .shutDown: return "Redis client shut down"
        case .unexpectedReply(let s): return "unexpected reply from Redis: \(s)"
        }
    }
}
