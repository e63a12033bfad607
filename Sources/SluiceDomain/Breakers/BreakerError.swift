/// Why a breaker request cannot be answered.
public enum BreakerError: Error, Sendable, Hashable {
    /// A new name, and the registry already holds its limit.
    case tooManyBreakers(limit: Int)
}
