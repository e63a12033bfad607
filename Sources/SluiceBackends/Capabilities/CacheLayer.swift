/// Which layer answered a cache read.
public enum CacheLayer: String, Sendable {
    /// This process's memory.
    case l1
    /// The store behind it: the SQLite file (embedded) or Redis (shared).
    case l2
    /// Expired, served within the caller's stale window (`CACHE.GET ... STALE ms`).
    case stale
}
