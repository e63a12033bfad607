import NIOCore
import SluiceDomain

/// The exact cache's Redis-down policy, around ``RedisExactCache``. While Redis cannot answer:
///
/// - reads (GET, CACHE.GET, EXISTS, TTL) are answered by this instance's L1 — a miss when L1
///   does not hold the key, with a lease from this instance's lease table when one was asked for;
/// - writes (SET, CACHE.SET, DEL) are *not* acknowledged: the client gets `-TRYAGAIN` (Redis
///   unreachable) or the error Redis gave, and the local copy is dropped, so nothing answered
///   `+OK` can be lost when Redis comes back (and L1 is cleared).
///
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

    public func read(_ key: ByteBuffer, lease: Int64, stale: Int64, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<CacheRead> {
        let answer = primary.read(key, lease: lease, stale: stale, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .cache, on: eventLoop) { [local] _ in
            let hash = local.keyspace.hasher.hash(key)
            local.keyspace.withShard(hash: hash) { $0.countL2Miss() }
            // Redis is down: what L1 kept, stale copies included (the case stale reads are for).
            return local.read(key, lease: lease, stale: stale, now: now, on: eventLoop)
        }
    }

    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, now: Timestamp,
                      on eventLoop: any EventLoop) -> Deferred<CacheWrite> {
        let answer = primary.write(key, value: value, meta: meta, condition: condition, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .cache, on: eventLoop) { [local] error in
            // An unconditional write went into L1 before Redis was asked: take that copy back.
            // A conditional one (a reader's copy, a leased answer) reaches L1 only after Redis
            // agreed: nothing to take back — and a delete would end a lease this instance's
            // table granted while Redis is down (a stricter caller's), so that the next caller
            // would be granted a second one.
            if condition == .always {
                let hash = local.keyspace.hasher.hash(key)
                local.keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
            }
            return .ready(.failed(RedisDownPolicy.storeFailure(error)))
        }
    }

    public func delete(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        // The L1 copies are gone already (dropped before Redis was asked); Redis still holds the keys.
        policy.recover(primary.delete(keys, now: now, on: eventLoop), .cache, on: eventLoop) { error in
            .ready(.failure(RedisDownPolicy.storeFailure(error)))
        }
    }

    public func deleteKeepingLease(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        policy.recover(primary.deleteKeepingLease(key, now: now, on: eventLoop), .cache, on: eventLoop) { error in
            .ready(.failure(RedisDownPolicy.storeFailure(error)))
        }
    }

    public func deleteUnlessLeased(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        policy.recover(primary.deleteUnlessLeased(key, now: now, on: eventLoop), .cache, on: eventLoop) { error in
            .ready(.failure(RedisDownPolicy.storeFailure(error)))
        }
    }

    public func exists(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Int> {
        let answer = primary.exists(keys, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let keys = keys.map(ByteBuffer.owned)
        return policy.recover(answer, .cache, on: eventLoop) { [local] _ in local.exists(keys, now: now, on: eventLoop) }
    }

    public func timeToLive(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<TimeToLive> {
        let answer = primary.timeToLive(key, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .cache, on: eventLoop) { [local] _ in local.timeToLive(key, now: now, on: eventLoop) }
    }

    public var takesOptionalWrites: Bool { primary.takesOptionalWrites }

    public func statistics(now: Int64) -> ExactCacheStatistics {
        var s = primary.statistics(now: now)
        s.backendCounters.append(("redis_fallbacks", policy.cacheFallbackCount))
        s.backendCounters.append(("redis_semantic_fallbacks", policy.semanticFallbackCount))
        return s
    }
}
