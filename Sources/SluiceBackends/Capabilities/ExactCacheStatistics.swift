import SluiceDomain

/// The exact cache's numbers for STATS and INFO.
public struct ExactCacheStatistics: Sendable {
    public var keyspace: Keyspace.Summary
    public var l1Capacity: Int
    /// "sqlite", "redis" or "none".
    public var backend: String
    /// Backend counters as (name, value), e.g. ("batches", 12).
    public var backendCounters: [(String, Int)]
    /// Text rows of the backend for `INFO` (a Redis Cluster's nodes).
    public var backendDetails: [(String, String)] = []

    public init(keyspace: Keyspace.Summary, l1Capacity: Int, backend: String, backendCounters: [(String, Int)]) {
        self.keyspace = keyspace
        self.l1Capacity = l1Capacity
        self.backend = backend
        self.backendCounters = backendCounters
    }
}
