import NIOCore

/// The exact-match cache shared by all event loops: ``CacheShard``s behind their own locks,
/// picked by key hash, so that threads rarely wait on each other. Locks are held only for
/// in-memory work, never across I/O.
public final class Keyspace: Sendable {
    @usableFromInline let shards: Sharded<CacheShard>
    public let hasher: KeyHasher
    public let l1Capacity: Int
    /// Whether shards keep a directory of L2 keys (see ``CacheShard``).
    public let tracksL2: Bool

    /// - Parameters:
    ///   - l1Capacity: bytes for L1 values, split evenly across shards.
    ///   - shardCount: rounded up to a power of two.
    ///   - tracksL2: keep a directory of L2 keys (local L2).
    ///   - staleRetention: ms expired entries are kept for `CACHE.GET ... STALE` (`--max-stale`).
    public init(l1Capacity: Int, shardCount: Int = 64, tracksL2: Bool, staleRetention: Int64 = 0, hasher: KeyHasher = KeyHasher()) {
        var n = 1
        while n < max(shardCount, 1) { n <<= 1 }
        let perShard = l1Capacity / n
        shards = Sharded(count: n) { _ in CacheShard(l1Capacity: perShard, tracksL2: tracksL2, staleRetention: staleRetention) }
        self.hasher = hasher
        self.l1Capacity = l1Capacity
        self.tracksL2 = tracksL2
        self.staleRetention = max(staleRetention, 0)
    }

    /// Ms expired entries are kept for stale reads.
    public let staleRetention: Int64

    /// Runs `body` on the key's shard under its lock. Keep it short and free of I/O.
    @inlinable
    public func withShard<R>(hash: UInt64, _ body: (inout CacheShard) -> R) -> R {
        shards.withShard(hash: hash, body)
    }

    /// Visits every shard in turn (statistics, sweeping, start-up restore).
    public func forEachShard(_ body: (inout CacheShard) -> Void) {
        shards.forEach(body)
    }

    public var shardCount: Int { shards.count }

    /// Runs `body` on shard `index` (round-robin housekeeping).
    public func withShard(at index: Int, _ body: (inout CacheShard) -> Void) {
        shards.withShard(at: index, body)
    }

    public struct Summary: Sendable, Hashable {
        public var counters = CacheShard.Counters()
        public var l1 = S3FIFOCache.Statistics()
        public var keys = 0
        public var leases = 0
    }

    public func summary(now: Int64) -> Summary {
        var s = Summary()
        forEachShard { shard in
            s.counters = s.counters + shard.counters
            s.l1.entries += shard.l1.statistics.entries
            s.l1.bytes += shard.l1.statistics.bytes
            s.l1.evictions += shard.l1.statistics.evictions
            s.keys += shard.keyCount
            s.leases += shard.leases.count
        }
        return s
    }
}
