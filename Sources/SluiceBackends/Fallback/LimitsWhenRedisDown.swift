/// How rate limits decide while Redis cannot answer (`--limits-when-redis-down`).
public enum LimitsWhenRedisDown: String, Sendable, CaseIterable {
    /// Decide with this instance's own buckets (each instance then allows up to the limit).
    case local
    /// Refuse every request until Redis is back.
    case deny
    /// Allow every request until Redis is back.
    case allow
}
