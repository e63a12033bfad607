import NIOCore
import SluiceDomain

/// The exact-match cache with leases: GET/SET/DEL/EXISTS/TTL and CACHE.GET/CACHE.SET are
/// written once against this.
///
/// Implementations: ``EmbeddedExactCache`` (L1 + the SQLite file), ``RedisExactCache`` (L1 + a
/// Redis every instance shares) and ``FallbackExactCache``, the Redis-down policy around the
/// Redis one. Keys and values may be slices of a connection's read buffer: an implementation
/// copies what it keeps beyond the call.
public protocol ExactCache: Sendable {
    /// A key's value; on a miss, with `stale` > 0, an entry expired less than `stale` ms ago
    /// (kept for `--max-stale`; answered with layer `.stale`), and otherwise, with `lease` > 0,
    /// a lease of that many ms.
    func read(_ key: ByteBuffer, lease: Int64, stale: Int64, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<CacheRead>

    func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, now: Timestamp,
               on eventLoop: any EventLoop) -> Deferred<CacheWrite>

    /// How many of the keys existed (and are gone now); a failure when the delete could not
    /// be made in the shared store.
    func delete(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>>

    /// Deletes `key` unless a caller holds a live lease on it (the lease stays): false when one
    /// does, and nothing was done. A reader retiring an entry it found outdated (LLM.GET's
    /// copies) must not end the lease a concurrent reader, which retired it first, was granted.
    func deleteUnlessLeased(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>>

    /// Deletes `key` (and its stale copy) without ending a lease on it: true when it existed. A
    /// verdict that judged the answer bad removes it at once, while a reader that retired it
    /// first and holds the question's lease keeps it (in shared mode an answer stored without
    /// the lease can stand beside one).
    func deleteKeepingLease(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>>

    /// How many of the keys exist (a key named twice counts twice, as in Redis).
    func exists(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Int>

    func timeToLive(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<TimeToLive>

    func statistics(now: Int64) -> ExactCacheStatistics

    /// Whether a write nobody waits for (LLM.GET's copy of a semantic hit) is worth making now:
    /// false while the store's write queue is past its bound, where such writes, made by reads,
    /// would only grow it (a flood of lookups for a large answer once grew it to 13 GB).
    var takesOptionalWrites: Bool { get }
}

extension ExactCache {
    /// A read that never answers stale.
    @inlinable
    public func read(_ key: ByteBuffer, lease: Int64, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<CacheRead> {
        read(key, lease: lease, stale: 0, now: now, on: eventLoop)
    }
}
