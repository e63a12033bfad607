import NIOCore
import SluiceDomain

/// The exact cache of one process: L1 in memory in front of the SQLite file (or of nothing).
///
/// The keyspace's shards know every key the file holds (the directory), so everything but the
/// value of an entry L1 has evicted is answered from memory, under one shard lock: NX/XX, a
/// lease after a miss, EXISTS, TTL. Only such a value is read from the file, on the store's
/// reader threads, and promoted into L1 if the key did not change meanwhile. Writes go to L1
/// at once and to the file in the store's next group commit.
///
/// Without a store it is an L1-only cache; the shared mode's Redis-down fallback uses it so.
public final class EmbeddedExactCache: ExactCache {
    public let keyspace: Keyspace
    public let store: SQLiteStore?
    /// Count lookups as hits/misses (off for the fallback's second look at a request that the
    /// shared-mode read already counted).
    let countsLookups: Bool

    public init(keyspace: Keyspace, store: SQLiteStore?, countsLookups: Bool = true) {
        precondition(keyspace.tracksL2 == (store != nil), "the keyspace keeps a directory exactly when a store is behind it")
        self.keyspace = keyspace
        self.store = store
        self.countsLookups = countsLookups
    }

    /// Keeps the directory in step with rows the store deletes to stay under its size bound:
    /// a key whose row is gone leaves the directory (its L1 copy, if any, stays until evicted).
    /// A key written again since is left alone: its new row is on its way.
    public func followStoreEvictions() {
        guard let store else { return }
        let keyspace = keyspace
        store.onEvicted { keys in
            for key in keys {
                let hash = keyspace.hasher.hash(key)
                keyspace.withShard(hash: hash) { shard in
                    // The store's queue is consulted under the shard's lock, where writes enqueue.
                    if !store.isPending(key) { shard.forgetL2(hash: hash) }
                }
            }
        }
    }

    enum ReadStep {
        case answered(CacheRead)
        case fetch(version: UInt64)
    }

    public func read(_ key: ByteBuffer, lease: Int64, stale: Int64, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<CacheRead> {
        let hash = keyspace.hasher.hash(key)
        let token = lease > 0 ? LeaseToken.random() : 0
        let counting = countsLookups
        // A stale window reaches back at most as far as expired entries are kept.
        let stale = min(stale, keyspace.staleRetention)
        let step = keyspace.withShard(hash: hash) { shard -> ReadStep in
            switch shard.read(key, hash: hash, now: now.wall, counting: counting) {
            case .hit(let value, let meta): return .answered(.hit(value, meta, .l1))
            case .inL2(let version): return .fetch(version: version)
            case .miss:
                if stale > 0 {
                    switch shard.readStale(key, hash: hash, now: now.wall, within: stale) {
                    case .hit(let value, let meta): return .answered(.hit(value, meta, .stale))
                    case .inL2(let version): return .fetch(version: version)
                    case .miss: break
                    }
                }
                return .answered(.miss(lease: Self.lease(&shard, key, hash: hash, token: token, duration: lease, now: now)))
            }
        }
        switch step {
        case .answered(let read):
            return .ready(read)
        case .fetch(let version):
            guard let store else { return .ready(.miss(lease: nil)) }
            let owned = ByteBuffer.owned(key)
            let keyspace = keyspace
            // With a stale window the file is asked as of the window's start: a row expired
            // within it comes back, and is answered as stale.
            return .later(store.fetch(owned, now: now.wall.subtractingSaturating(stale), on: eventLoop).map { found -> CacheRead in
                keyspace.withShard(hash: hash) { shard -> CacheRead in
                    guard let (value, meta) = found else {
                        shard.countL2Miss()
                        return .miss(lease: Self.lease(&shard, owned, hash: hash, token: token, duration: lease, now: now))
                    }
                    let entry = S3FIFOCache.entry(key: owned, value: value)
                    if meta.isExpired(at: now.wall) {
                        shard.counters.staleHits += 1
                        return .hit(CachedValue(entry: entry, keyLength: owned.readableBytes), meta, .stale)
                    }
                    shard.promote(entry: entry, keyLength: owned.readableBytes, hash: hash, meta: meta, version: version, now: now.wall)
                    return .hit(CachedValue(entry: entry, keyLength: owned.readableBytes), meta, .l2)
                }
            }.recover { _ in
                // The file could not be read: a miss, not an error, for the client (who may
                // compute the value: with a lease, so that others wait for it).
                keyspace.withShard(hash: hash) { shard -> CacheRead in
                    shard.countL2Miss()
                    // The key is there but unreadable: whoever gets the lease recomputes it.
                    guard lease > 0, case .granted(let t) = shard.lease(hash: hash, token: token, now: now.monotonic, duration: lease) else {
                        return .miss(lease: nil)
                    }
                    return .miss(lease: t)
                }
            })
        }
    }

    /// After a miss, under the shard's lock: grants `token` when a lease was asked for, nobody
    /// holds one, and the value has not been stored since the miss.
    static func lease(_ shard: inout CacheShard, _ key: ByteBuffer, hash: UInt64, token: UInt64, duration: Int64, now: Timestamp) -> UInt64? {
        guard duration > 0 else { return nil }
        if shard.expiry(key, hash: hash, now: now.wall) != nil { return nil }
        if case .granted(let t) = shard.lease(hash: hash, token: token, now: now.monotonic, duration: duration) { return t }
        return nil
    }

    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, now: Timestamp,
                      on eventLoop: any EventLoop) -> Deferred<CacheWrite> {
        if let store, let refusal = store.writeRefusal { return .ready(.failed(refusal)) }
        // Built before taking the lock: an exact-size entry that does not pin the read buffer,
        // and the copies the store's queue keeps.
        let entry = S3FIFOCache.entry(key: key, value: value)
        let queued = store.map { _ in (ByteBuffer.owned(key), ByteBuffer.owned(value)) }
        let hash = keyspace.hasher.hash(key)
        let (outcome, admission) = keyspace.withShard(hash: hash) { shard -> (CacheWrite, SQLiteStore.Admission) in
            switch condition {
            case .always: break
            case .ifAbsent: if shard.expiry(key, hash: hash, now: now.wall) != nil { return (.notStored, .now) }
            case .ifPresent: if shard.expiry(key, hash: hash, now: now.wall) == nil { return (.notStored, .now) }
            case .leaseHolder(let token): if !shard.leases.admits(hash, token: token, now: now.monotonic) { return (.leaseRefused, .now) }
            case .copy(let token):
                if !shard.leases.admits(hash, token: token, now: now.monotonic) { return (.leaseRefused, .now) }
                if shard.expiry(key, hash: hash, now: now.wall) != nil {
                    // An answer is there already: the holder's lease (if this is the holder)
                    // has nothing left to wait for, and nobody else knows its token.
                    if token != 0 { shard.leases.end(hash) }
                    return (.notStored, .now)
                }
            }
            shard.write(entry: entry, keyLength: key.readableBytes, hash: hash, meta: meta)
            // Queued under the shard's lock, so that an eviction of this key's old row sees it.
            guard let store, let (k, v) = queued else { return (.stored, .now) }
            return (.stored, store.store(k, value: v, meta: meta))
        }
        return acknowledge(outcome, admission, on: eventLoop)
    }

    /// Holds the answer until the store says so: when the write is durable (`--fsync always`),
    /// or when its queue has room again (a writer faster than the disk).
    func acknowledge<T: Sendable>(_ answer: T, _ admission: SQLiteStore.Admission, on eventLoop: any EventLoop,
                                  failed: @escaping @Sendable (StoreFailure) -> T) -> Deferred<T> {
        guard let store else { return .ready(answer) }
        switch admission {
        case .now:
            return .ready(answer)
        case .whenRoom:
            return .later(store.room(on: eventLoop).map { answer }.recover { failed(.notPersisted("\($0)")) })
        case .whenDurable(let ticket):
            return .later(store.durable(ticket, on: eventLoop).map { answer }.recover { failed(.notPersisted("\($0)")) })
        }
    }

    func acknowledge(_ outcome: CacheWrite, _ admission: SQLiteStore.Admission, on eventLoop: any EventLoop) -> Deferred<CacheWrite> {
        acknowledge(outcome, admission, on: eventLoop) { .failed($0) }
    }

    public func delete(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(refusal)) }
        var removed = 0
        var admission = SQLiteStore.Admission.now
        for key in keys {
            let hash = keyspace.hasher.hash(key)
            let queued = store.map { _ in ByteBuffer.owned(key) }
            let done = keyspace.withShard(hash: hash) { shard -> SQLiteStore.Admission? in
                guard shard.delete(key, hash: hash, now: now.wall) else { return nil }
                guard let store, let queued else { return .now }
                return store.delete(queued)
            }
            if let done {
                removed += 1
                if case .now = done {} else { admission = done }
            }
        }
        return acknowledge(.success(removed), admission, on: eventLoop) { .failure($0) }
    }

    public func deleteUnlessLeased(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        // Decided under the shard's lock, where leases are granted: no reader comes between.
        deleteOne(key, now: now, on: eventLoop) { shard, hash in
            guard shard.leases.holder(of: hash, now: now.monotonic) == nil else { return (answer: false, removed: false) }
            return (answer: true, removed: shard.delete(key, hash: hash, now: now.wall))
        }
    }

    public func deleteKeepingLease(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        deleteOne(key, now: now, on: eventLoop) { shard, hash in
            let removed = shard.delete(key, hash: hash, now: now.wall, endingLease: false)
            return (answer: removed, removed: removed)
        }
    }

    /// One key's delete, decided by `decide` under its shard's lock (`removed`: the entry went,
    /// so the file forgets it too); answered `answer` once the file's queue takes it.
    func deleteOne(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop,
                   _ decide: (inout CacheShard, UInt64) -> (answer: Bool, removed: Bool)) -> Deferred<Result<Bool, StoreFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(refusal)) }
        let hash = keyspace.hasher.hash(key)
        let queued = store.map { _ in ByteBuffer.owned(key) }
        let (answer, admission) = keyspace.withShard(hash: hash) { shard -> (Bool, SQLiteStore.Admission) in
            let decided = decide(&shard, hash)
            guard decided.removed, let store, let queued else { return (decided.answer, .now) }
            return (decided.answer, store.delete(queued))
        }
        return acknowledge(.success(answer), admission, on: eventLoop) { .failure($0) }
    }

    public func exists(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Int> {
        .ready(keys.reduce(0) { $0 + (expiry($1, now: now.wall) != nil ? 1 : 0) })
    }

    public func timeToLive(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<TimeToLive> {
        switch expiry(key, now: now.wall) {
        case nil: return .ready(.absent)
        case 0?: return .ready(.forever)
        case let at?: return .ready(.milliseconds(at - now.wall))
        }
    }

    /// Expiry of a live key: nil = absent, 0 = never.
    func expiry(_ key: ByteBuffer, now: Int64) -> Int64? {
        let hash = keyspace.hasher.hash(key)
        return keyspace.withShard(hash: hash) { $0.expiry(key, hash: hash, now: now) }
    }

    public var takesOptionalWrites: Bool { store.map { !$0.isOverPendingBound } ?? true }

    public func statistics(now: Int64) -> ExactCacheStatistics {
        ExactCacheStatistics(keyspace: keyspace.summary(now: now), l1Capacity: keyspace.l1Capacity,
                             backend: store == nil ? "none" : "sqlite", backendCounters: store?.statistics() ?? [])
    }
}
