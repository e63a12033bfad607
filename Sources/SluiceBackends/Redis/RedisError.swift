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
    /// Redis answered with an error (OOM, READONLY, a script error ...).
    case errorReply(String)

    /// The connection is down or broke: an outage, not an answer.
    public var isOutage: Bool {
        switch self {
        case .unavailable, .connectionLost, .shutDown: return true
        case .badURL, .unexpectedReply, .errorReply: return false
        }
    }

    public var description: String {
        switch self {
        case .badURL(let s): return "bad Redis URL: \(s)"
        case .unavailable(let s): return "Redis unavailable: \(s)"
        case .connectionLost(let s): return "Redis connection lost: \(s)"
        case .shutDown: return "Redis client shut down"
        case .unexpectedReply(let s): return "unexpected reply from Redis: \(s)"
        case .errorReply(let s): return "Redis answered: \(s)"
        }
    }
}
