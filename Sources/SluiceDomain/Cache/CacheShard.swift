import NIOCore

/// One shard of the exact-match keyspace: the L1 values, the directory of every key the local
/// L2 holds, and the leases — kept together so that a check and the write that follows it
/// (SET NX, a lease on a miss) happen under one lock.
///
/// The directory exists when the L2 is local (the embedded SQLite store): it knows every key
/// with its expiry, so EXISTS, TTL, NX and misses are answered from memory and only the *value*
/// of an entry that L1 evicted has to be read from disk. It costs about 51 bytes per key
/// (measured with `sluice-bench memory`).
/// It is keyed by the 64-bit key hash; two keys with the same hash would share an entry
/// (odds about n²/2⁶⁵; the value read itself is always checked against the full key).
public struct CacheShard: Sendable {
    public struct DirectoryEntry: Sendable, Hashable {
        public var expiresAt: Int64
        public var version: UInt64
    }

    public struct Counters: Sendable, Hashable {
        public var hits = 0
        public var misses = 0
        public var l2Hits = 0
        public var l2Misses = 0
        public var expired = 0
        /// Expired entries served to `CACHE.GET ... STALE` (from L1, or the L2 when counted there).
        public var staleHits = 0
        public var leasesGranted = 0
        public var leaseWaits = 0
        public var tokensSaved: Int64 = 0
        public var costSaved: Double = 0
        /// Hits on entries stored with TOKENS, COST or TAG, by tag id and by layer: [0] L1, [1] L2.
        public var savedByTag: [UInt16: [Savings]] = [:]

        public static func + (a: Counters, b: Counters) -> Counters {
            Counters(hits: a.hits + b.hits, misses: a.misses + b.misses,
                     l2Hits: a.l2Hits + b.l2Hits, l2Misses: a.l2Misses + b.l2Misses, expired: a.expired + b.expired,
                     staleHits: a.staleHits + b.staleHits,
                     leasesGranted: a.leasesGranted + b.leasesGranted, leaseWaits: a.leaseWaits + b.leaseWaits,
                     tokensSaved: a.tokensSaved.addingSaturating(b.tokensSaved), costSaved: a.costSaved + b.costSaved,
                     savedByTag: a.savedByTag.merging(b.savedByTag) { x, y in [x[0] + y[0], x[1] + y[1]] })
        }

        /// A hit that saved `meta`'s tokens and cost, from L1 (layer 0) or L2 (1).
        mutating func countSaving(_ meta: EntryMeta, layer: Int) {
            tokensSaved = tokensSaved.addingSaturating(meta.tokens)
            costSaved += meta.cost
            guard meta.countsSavings else { return }
            savedByTag[meta.tag, default: [Savings(), Savings()]][layer].add(tokens: meta.tokens, cost: meta.cost)
        }
    }

    public enum Read: Sendable {
        /// In L1.
        case hit(CachedValue, EntryMeta)
        /// Live, but its value is only in the L2; fetch it, then ``promote``.
        case inL2(version: UInt64)
        case miss
    }

    public var l1: S3FIFOCache
    public private(set) var directory: [UInt64: DirectoryEntry]?
    public var leases = LeaseTable()
    public var counters = Counters()
    var nextVersion: UInt64 = 1
    var sweepCursor = 0
    /// Counts every change to a key of this shard (write, delete, expiry, an L1 copy dropped).
    /// Without a directory (shared mode) a value fetched from Redis is promoted only if this did
    /// not move while it was fetched: a GET racing a DEL or an invalidation must not put the
    /// old value back into L1.
    public private(set) var changes: UInt64 = 0

    /// `tracksL2`: keep the directory (true when the L2 is a local store this process owns).
    /// `staleRetention`: ms expired entries are kept (L1 and directory) for stale reads.
    public init(l1Capacity: Int, tracksL2: Bool, staleRetention: Int64 = 0) {
        l1 = S3FIFOCache(capacity: l1Capacity)
        l1.staleRetention = max(staleRetention, 0)
        directory = tracksL2 ? [:] : nil
    }

    public var staleRetention: Int64 { l1.staleRetention }

    // MARK: Reads

    /// `counting`: count the lookup as a hit or miss (false for a second look at the same
    /// request, e.g. the Redis-down fallback after the shared-mode read already counted it).
    public mutating func read(_ key: ByteBuffer, hash: UInt64, now: Int64, counting: Bool = true) -> Read {
        if let (value, meta) = l1.read(key, hash: hash, now: now) {
            if counting {
                counters.hits += 1
                counters.countSaving(meta, layer: 0)
            }
            return .hit(value, meta)
        }
        if counting { counters.misses += 1 }
        if let entry = directory?[hash] {
            if entry.expiresAt == 0 || entry.expiresAt > now {
                return .inL2(version: entry.version)
            }
            // Expired: kept for stale reads until its retention ends.
            if entry.expiresAt <= now.subtractingSaturating(staleRetention) {
                directory![hash] = nil
                counters.expired += 1
            }
        }
        // With a directory, a key absent from it is an L2 miss known without I/O.
        if directory != nil { counters.l2Misses += 1 }
        return .miss
    }

    /// A stale read (`CACHE.GET ... STALE ms`) after ``read`` missed: an entry expired less
    /// than `within` ms ago (at most the retention), from L1, or from the L2 through the
    /// directory. Counted as a stale hit when found in L1.
    public mutating func readStale(_ key: ByteBuffer, hash: UInt64, now: Int64, within: Int64) -> Read {
        let since = now.subtractingSaturating(min(within, staleRetention))
        if let (value, meta) = l1.read(key, hash: hash, now: since) {
            counters.staleHits += 1
            return .hit(value, meta)
        }
        if let entry = directory?[hash], entry.expiresAt == 0 || entry.expiresAt > since {
            return .inL2(version: entry.version)
        }
        return .miss
    }

    /// Expiry of a live key without counting a read: nil = no such key; 0 = never expires.
    public func expiry(_ key: ByteBuffer, hash: UInt64, now: Int64) -> Int64? {
        if let meta = l1.peek(key, hash: hash, now: now) { return meta.expiresAt }
        if let entry = directory?[hash], entry.expiresAt == 0 || entry.expiresAt > now {
            return entry.expiresAt
        }
        return nil
    }

    /// A value fetched from L2 after ``read`` said `.inL2`. It goes into L1 only if the key was
    /// not written or deleted meanwhile (same version), so a slow read never resurrects
    /// or overwrites anything.
    public mutating func promote(_ key: ByteBuffer, hash: UInt64, value: ByteBuffer, meta: EntryMeta, version: UInt64?) {
        promote(entry: S3FIFOCache.entry(key: key, value: value), keyLength: key.readableBytes, hash: hash, meta: meta, version: version)
    }

    /// ``promote(_:hash:value:meta:version:)`` with the entry already built (key bytes, then value bytes).
    /// `unchangedSince`: promote only if ``changes`` still has this value (shared mode).
    /// `now`: an expired L1 copy under the hash (kept for stale reads) is replaced.
    public mutating func promote(entry: [UInt8], keyLength: Int, hash: UInt64, meta: EntryMeta, version: UInt64?,
                                 unchangedSince: UInt64? = nil, now: Int64 = .min) {
        counters.l2Hits += 1
        counters.countSaving(meta, layer: 1)
        if let directory, directory[hash]?.version != version { return }
        if let unchangedSince, changes != unchangedSince { return }
        if l1.containsLive(hash: hash, now: now) { return }
        l1.write(entry: entry, keyLength: keyLength, hash: hash, meta: meta)
    }

    /// The L2 had nothing after all (expired meanwhile, or a hash collision).
    public mutating func countL2Miss() {
        counters.l2Misses += 1
    }

    // MARK: Writes

    public mutating func write(_ key: ByteBuffer, hash: UInt64, value: ByteBuffer, meta: EntryMeta) {
        write(entry: S3FIFOCache.entry(key: key, value: value), keyLength: key.readableBytes, hash: hash, meta: meta)
    }

    /// `entry` is the key's bytes followed by the value's (``S3FIFOCache/entry(key:value:)``).
    public mutating func write(entry: [UInt8], keyLength: Int, hash: UInt64, meta: EntryMeta) {
        changes &+= 1
        l1.write(entry: entry, keyLength: keyLength, hash: hash, meta: meta)
        if directory != nil {
            directory![hash] = DirectoryEntry(expiresAt: meta.expiresAt, version: nextVersion)
            nextVersion += 1
        }
        leases.end(hash)
    }

    /// true: the key existed (live) and is gone now. `endingLease` false: a lease on the key
    /// stays (a verdict removing an answer while a reader asks the upstream).
    public mutating func delete(_ key: ByteBuffer, hash: UInt64, now: Int64, endingLease: Bool = true) -> Bool {
        changes &+= 1
        var existed = l1.remove(key, hash: hash, now: now)
        if let entry = directory?.removeValue(forKey: hash) {
            existed = existed || entry.expiresAt == 0 || entry.expiresAt > now
        }
        if endingLease { leases.end(hash) }
        return existed
    }

    /// Changes the expiry of a live key; false if there is none.
    public mutating func setExpiry(_ key: ByteBuffer, hash: UInt64, expiresAt: Int64, now: Int64) -> Bool {
        guard expiry(key, hash: hash, now: now) != nil else { return false }
        changes &+= 1
        if let (value, meta) = l1.read(key, hash: hash, now: now) {
            var meta = meta
            meta.expiresAt = expiresAt
            l1.write(entry: value.entry, keyLength: value.keyLength, hash: hash, meta: meta)
        }
        if directory != nil { directory![hash]?.expiresAt = expiresAt }
        return true
    }

    /// The L2 no longer holds this key (its row was evicted to keep the file under its bound):
    /// forget it in the directory. An L1 copy stays until L1 evicts it.
    /// The file's bound evicted this key: it is gone, from L1 too (GET, EXISTS, TTL and NX
    /// must agree, and a restart would not bring it back either).
    public mutating func forgetL2(hash: UInt64) {
        directory?[hash] = nil
        changes &+= 1
        l1.remove(hash: hash)
    }

    /// Another instance changed this key: forget the L1 copy (shared mode).
    public mutating func dropL1(_ key: ByteBuffer, hash: UInt64) {
        changes &+= 1
        l1.remove(key, hash: hash, now: 0)
    }

    /// Invalidations may have been missed: forget every L1 copy (shared mode).
    public mutating func clearL1() {
        changes &+= 1
        let retention = l1.staleRetention
        l1 = S3FIFOCache(capacity: l1.capacity, promotionThreshold: l1.promotionThreshold)
        l1.staleRetention = retention
    }

    // MARK: Leases

    public enum LeaseOutcome: Sendable, Hashable {
        case granted(UInt64)
        case heldByAnother
    }

    /// After a miss: grant `token`, or say someone else is already computing this key.
    /// `now` is monotonic (leases live in memory only).
    public mutating func lease(hash: UInt64, token: UInt64, now: Int64, duration: Int64) -> LeaseOutcome {
        if leases.acquire(hash, token: token, now: now, duration: duration) {
            counters.leasesGranted += 1
            return .granted(token)
        }
        counters.leaseWaits += 1
        return .heldByAnother
    }

    // MARK: Housekeeping

    /// Reclaims expired entries: up to `budget` L1 slots per call (continuing where the last
    /// call stopped) and, when asked, the whole directory and the lease table. Entries expire
    /// by the wall clock, leases by the monotonic one.
    public mutating func sweep(now: Timestamp, budget: Int, includingDirectory: Bool = true) {
        let (next, removed) = l1.sweepExpired(now: now.wall, from: sweepCursor, budget: budget)
        sweepCursor = next
        counters.expired += removed
        guard includingDirectory else { return }
        if let d = directory {
            let before = d.count
            let kept = now.wall.subtractingSaturating(staleRetention)
            directory = d.filter { $0.value.expiresAt == 0 || $0.value.expiresAt > kept }
            counters.expired += before - directory!.count
        }
        if leases.count > 0 { leases.sweep(now: now.monotonic) }
    }

    /// Fills the directory from the L2 at start-up (no L1 values yet).
    public mutating func restore(hash: UInt64, expiresAt: Int64) {
        directory?[hash] = DirectoryEntry(expiresAt: expiresAt, version: nextVersion)
        nextVersion += 1
    }

    public var tracksL2: Bool { directory != nil }

    public var keyCount: Int { directory?.count ?? l1.statistics.entries }
}
