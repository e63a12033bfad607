import NIOCore
import Testing
@testable import SluiceDomain

@Suite("Cache shard: L1 + directory + leases")
struct CacheShardTests {
    let hasher = KeyHasher(seed: 1)

    func k(_ s: String) -> (ByteBuffer, UInt64) {
        let b = ByteBuffer(string: s)
        return (b, hasher.hash(b))
    }

    /// An entry carrying the largest token count (say, written by an older version and read
    /// back from the file) read again and again: the saved-tokens counter stops at its maximum
    /// instead of trapping, in L1 hits, L2 promotions and summaries.
    @Test func tokensSavedSaturateInsteadOfTrapping() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: true)
        let (b, h) = k("tk")
        shard.write(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0, tokens: .max, cost: 1e308))
        for _ in 0..<3 { _ = shard.read(b, hash: h, now: 1) }
        shard.promote(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0, tokens: .max), version: nil)
        #expect(shard.counters.tokensSaved == .max)
        let twice = shard.counters + shard.counters
        #expect(twice.tokensSaved == .max)
    }

    /// Shared mode (no directory): a GET's fetch from Redis that raced a DEL (or an
    /// invalidation) of the key does not put the old value back into L1.
    @Test func sharedModePromotionSkipsKeysChangedDuringTheFetch() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: false)
        let (b, h) = k("raced")
        guard case .miss = shard.read(b, hash: h, now: 1) else { Issue.record("expected a miss"); return }
        let before = shard.changes
        _ = shard.delete(b, hash: h, now: 1)  // DEL while the GET's reply is on its way
        shard.promote(entry: S3FIFOCache.entry(key: b, value: ByteBuffer(string: "old")), keyLength: b.readableBytes, hash: h,
                      meta: EntryMeta(createdAt: 0), version: nil, unchangedSince: before)
        guard case .miss = shard.read(b, hash: h, now: 1) else { Issue.record("resurrected"); return }
        // Without a change in between, the fetched value is kept.
        let quiet = shard.changes
        shard.promote(entry: S3FIFOCache.entry(key: b, value: ByteBuffer(string: "new")), keyLength: b.readableBytes, hash: h,
                      meta: EntryMeta(createdAt: 0), version: nil, unchangedSince: quiet)
        guard case .hit = shard.read(b, hash: h, now: 1) else { Issue.record("not promoted"); return }
    }

    @Test func valueEvictedFromL1IsStillKnownThroughTheDirectory() {
        let small = S3FIFOCache.charge(keyLength: 2, valueLength: 10) * 3
        var shard = CacheShard(l1Capacity: small, tracksL2: true)
        for i in 0..<10 {
            let (b, h) = k("k\(i)")
            shard.write(b, hash: h, value: ByteBuffer(string: "0123456789"), meta: EntryMeta(createdAt: 0))
        }
        let (b0, h0) = k("k0")
        guard case .inL2(let version) = shard.read(b0, hash: h0, now: 1) else {
            Issue.record("expected the L2 to be asked"); return
        }
        #expect(shard.expiry(b0, hash: h0, now: 1) == 0)
        shard.promote(b0, hash: h0, value: ByteBuffer(string: "0123456789"), meta: EntryMeta(createdAt: 0), version: version)
        guard case .hit = shard.read(b0, hash: h0, now: 1) else { Issue.record("not promoted"); return }
        #expect(shard.counters.l2Hits == 1)
    }

    @Test func staleFetchDoesNotOverwriteANewerWrite() {
        var shard = CacheShard(l1Capacity: 0, tracksL2: true)  // L1 keeps nothing
        let (b, h) = k("key")
        shard.write(b, hash: h, value: ByteBuffer(string: "old"), meta: EntryMeta(createdAt: 0))
        guard case .inL2(let version) = shard.read(b, hash: h, now: 1) else { Issue.record("no L2"); return }
        shard.write(b, hash: h, value: ByteBuffer(string: "new"), meta: EntryMeta(createdAt: 1))
        shard.promote(b, hash: h, value: ByteBuffer(string: "old"), meta: EntryMeta(createdAt: 0), version: version)
        #expect(!shard.l1.contains(hash: h))
    }

    @Test func deleteRemovesFromBothAndEndsLease() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: true)
        let (b, h) = k("key")
        #expect(shard.lease(hash: h, token: 5, now: 0, duration: 1000) == .granted(5))
        #expect(shard.delete(b, hash: h, now: 1) == false)
        shard.write(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0))
        #expect(shard.delete(b, hash: h, now: 1) == true)
        guard case .miss = shard.read(b, hash: h, now: 1) else { Issue.record("still there"); return }
        #expect(shard.lease(hash: h, token: 6, now: 2, duration: 1000) == .granted(6))
    }

    @Test func directoryExpiresEntriesOnReadAndSweep() {
        var shard = CacheShard(l1Capacity: 0, tracksL2: true)
        let (b, h) = k("ttl")
        shard.write(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        #expect(shard.expiry(b, hash: h, now: 9) == 10)
        #expect(shard.expiry(b, hash: h, now: 10) == nil)
        shard.sweep(now: Timestamp(wall: 10, monotonic: 10), budget: 100)
        #expect(shard.keyCount == 0)
    }

    @Test func setExpiryUpdatesBothLayers() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: true)
        let (b, h) = k("x")
        shard.write(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0))
        #expect(shard.setExpiry(b, hash: h, expiresAt: 50, now: 1) == true)
        #expect(shard.expiry(b, hash: h, now: 1) == 50)
        #expect(shard.directory?[h]?.expiresAt == 50)
    }
}

@Suite("Leases")
struct LeaseTableTests {
    @Test func oneHolderAtATime() {
        var t = LeaseTable()
        #expect(t.acquire(1, token: 100, now: 0, duration: 1000) == true)
        #expect(t.acquire(1, token: 200, now: 500, duration: 1000) == false)
        #expect(t.acquire(2, token: 300, now: 500, duration: 1000) == true)
        // Runs out: the next caller gets it.
        #expect(t.acquire(1, token: 400, now: 1000, duration: 1000) == true)
    }

    @Test func writesAreAdmittedUnlessAnotherCallerHoldsTheLease() {
        var t = LeaseTable()
        #expect(t.acquire(1, token: 100, now: 0, duration: 1000) == true)
        #expect(t.admits(1, token: 100, now: 10))
        #expect(!t.admits(1, token: 999, now: 10))
        // Holder's lease ran out and nobody took it: its late answer is still welcome.
        #expect(t.admits(1, token: 100, now: 5000))
        #expect(t.acquire(1, token: 200, now: 5000, duration: 1000) == true)
        #expect(!t.admits(1, token: 100, now: 5001))
    }

    @Test func sweepDropsExpiredLeases() {
        var t = LeaseTable()
        _ = t.acquire(1, token: 1, now: 0, duration: 10)
        _ = t.acquire(2, token: 2, now: 0, duration: 100)
        t.sweep(now: 50)
        #expect(t.count == 1)
    }
}

@Suite("Keyspace")
struct KeyspaceTests {
    @Test func concurrentLeaseRequestsGrantExactlyOne() async {
        let keyspace = Keyspace(l1Capacity: 1 << 20, tracksL2: false)
        let key = ByteBuffer(string: "stampede")
        let hash = keyspace.hasher.hash(key)
        let granted = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<64 {
                group.addTask {
                    let outcome = keyspace.withShard(hash: hash) { $0.lease(hash: hash, token: UInt64(i + 1), now: 0, duration: 60_000) }
                    if case .granted = outcome { return true }
                    return false
                }
            }
            var n = 0
            for await g in group where g { n += 1 }
            return n
        }
        #expect(granted == 1)
    }

    @Test func hasherIsSeededAndSpreadsKeys() {
        let a = KeyHasher(seed: 1), b = KeyHasher(seed: 2)
        let key = ByteBuffer(string: "same key")
        #expect(a.hash(key) != b.hash(key))
        #expect(a.hash(key) == a.hash(ByteBuffer(string: "same key")))
        var shards = Set<UInt64>()
        for i in 0..<1000 { shards.insert((a.hash(ByteBuffer(string: "k\(i)")) >> 40) & 63) }
        #expect(shards.count == 64)
    }

    /// The tail of a key past its last whole 8 bytes is read in one overlapping load: every
    /// length must hash as the byte-by-byte definition does, so every byte counts.
    @Test func aKeysTailHashesAsTheBytesDo() {
        let hasher = KeyHasher(seed: 7)
        func reference(_ bytes: [UInt8]) -> UInt64 {
            func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
                let p = a.multipliedFullWidth(by: b)
                return p.high ^ p.low
            }
            var h = hasher.seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
            var i = 0
            while i + 8 <= bytes.count {
                var word: UInt64 = 0
                for j in 0..<8 { word |= UInt64(bytes[i + j]) << (8 * UInt64(j)) }
                h = mix(h ^ word, 0xBF58_476D_1CE4_E5B9)
                i += 8
            }
            if i < bytes.count {
                var tail: UInt64 = 0
                for j in i..<bytes.count { tail |= UInt64(bytes[j]) << (8 * UInt64(j - i)) }
                h = mix(h ^ tail, 0x94D0_49BB_1331_11EB)
            }
            return mix(h, 0x2545_F491_4F6C_DD1D)
        }
        for length in 0...40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(hasher.hash(ByteBuffer(bytes: bytes)) == reference(bytes), "length \(length)")
            // The last byte changed: another hash.
            if length > 0 {
                var other = bytes
                other[length - 1] ^= 0x80
                #expect(hasher.hash(ByteBuffer(bytes: other)) != hasher.hash(ByteBuffer(bytes: bytes)), "length \(length)")
            }
        }
    }

    @Test func aKeyTheFileEvictedIsGoneFromL1Too() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: true)
        let b = ByteBuffer(string: "evicted")
        let h = KeyHasher(seed: 1).hash(b)
        shard.write(b, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0))
        guard case .hit = shard.read(b, hash: h, now: 1) else { Issue.record("not in L1"); return }
        shard.forgetL2(hash: h)
        guard case .miss = shard.read(b, hash: h, now: 1) else { Issue.record("GET must agree with the file"); return }
        #expect(shard.expiry(b, hash: h, now: 1) == nil)
    }
}
