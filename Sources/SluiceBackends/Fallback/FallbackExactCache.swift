import NIOCore
import SluiceDomain

/// The exact cache's Redis-down policy, around ``RedisExactCache``: while Redis cannot answer,
/// this instance's L1 does.
///
/// - read: L1 (already looked at by the Redis read) — a miss, with a lease from this instance's
///   lease table when one was asked for;
/// - write: kept in L1 and answered as stored (NX/XX and leases decided by this instance);
/// - delete: the L1 copies are gone; answers how many of the keys L1 held;
/// - exists, TTL: what L1 knows.
/// Every such answer is counted (`redis_fallbacks` in STATS).
public final class FallbackExactCache: ExactCache {
    public let primary: any ExactCache
    /// L1 alone, on the primary's keyspace; it does not count lookups again.
    let local: EmbeddedExactCache
    let policy: RedisDownPolicy

    public init(primary: any ExactCache, keyspace: Keyspace, policy: RedisDownPolicy) {
        self.primary = primary
        self.local = EmbeddedExactCache(keyspace: keyspace, store: nil, countsLookups: false)
        self.policy = policy
    }

    public func read(_ key: ByteBuffer, lease: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<CacheRead> {
        let answer = primary.read(key, lease: lease, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .cache, on: eventLoop) { [local] in local.read(key, lease: lease, now: now, on: eventLoop) }
    }

    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, now: Int64,
                      on eventLoop: any EventLoop) -> Deferred<CacheWrite> {
        let key = ByteBuffer.owned(key), value = ByteBuffer.owned(value)
        return policy.recover(primary.write(key, value: value, meta: meta, condition: condition, now: now, on: eventLoop), .cache, on: eventLoop) { [local] in
            local.write(key, value: value, meta: meta, condition: condition, now: now, on: eventLoop)
        }
    }

    public func delete(_ keys: [ByteBuffer], now: Int64, on eventLoop: any EventLoop) -> Deferred<Int> {
        // Asked before: the primary drops the L1 copies before it asks Redis.
        guard case .ready(let held) = local.exists(keys, now: now, on: eventLoop) else { preconditionFailure("L1 answers at once") }
        return policy.recover(primary.delete(keys, now: now, on: eventLoop), .cache, on: eventLoop) { .ready(held) }
    }

    public func exists(_ keys: [ByteBuffer], now: Int64, on eventLoop: any EventLoop) -> Deferred<Int> {
        let keys = keys.map(ByteBuffer.owned)
        return policy.recover(primary.exists(keys, now: now, on: eventLoop), .cache, on: eventLoop) { [local] in
            local.exists(keys, now: now, on: eventLoop)
        }
    }

    public func timeToLive(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<TimeToLive> {
        let key = ByteBuffer.owned(key)
        return policy.recover(primary.timeToLive(key, now: now, on: eventLoop), .cache, on: eventLoop) { [local] in
            local.timeToLive(key, now: now, on: eventLoop)
        }
    }

    public func statistics(now: Int64) -> ExactCacheStatistics {
        var s = primary.statistics(now: now)
        s.backendCounters.append(("redis_fallbacks", policy.cacheFallbackCount))
        return s
    }
}
