import NIOCore
import Testing
@testable import SluiceDomain

@Suite("L1 (S3-FIFO)")
struct S3FIFOCacheTests {
    let hasher = KeyHasher(seed: 42)

    func key(_ s: String) -> (ByteBuffer, UInt64) {
        let b = ByteBuffer(string: s)
        return (b, hasher.hash(b))
    }

    func put(_ cache: inout S3FIFOCache, _ k: String, _ v: String, expiresAt: Int64 = 0) {
        let (b, h) = key(k)
        cache.write(b, hash: h, value: ByteBuffer(string: v), meta: EntryMeta(createdAt: 0, expiresAt: expiresAt))
    }

    func get(_ cache: inout S3FIFOCache, _ k: String, now: Int64 = 1) -> String? {
        let (b, h) = key(k)
        return cache.read(b, hash: h, now: now).map { String(decoding: $0.value.bytes, as: UTF8.self) }
    }

    @Test func storesReplacesAndRemoves() {
        var cache = S3FIFOCache(capacity: 1 << 20)
        put(&cache, "a", "1")
        #expect(get(&cache, "a") == "1")
        put(&cache, "a", "22")
        #expect(get(&cache, "a") == "22")
        #expect(cache.statistics.entries == 1)
        #expect(cache.statistics.bytes == S3FIFOCache.charge(keyLength: 1, valueLength: 2))
        let (b, h) = key("a")
        #expect(cache.remove(b, hash: h, now: 1) == true)
        #expect(get(&cache, "a") == nil)
        #expect(cache.statistics.entries == 0 && cache.statistics.bytes == 0)
    }

    /// The entry being replaced, alone in main, grows to nearly the whole budget while small
    /// holds a little: eviction must take from small instead of cycling the spared entry forever
    /// (it used to spin, holding the shard's lock).
    @Test(.timeLimit(.minutes(1)))
    func replacingTheOnlyMainEntryWithANearlyFullOneEvictsFromSmall() {
        let capacity = 10_000
        var cache = S3FIFOCache(capacity: capacity)
        put(&cache, "m", String(repeating: "a", count: 500))
        _ = get(&cache, "m")  // read once: promoted to main when small is next evicted
        var i = 0
        while let index = cache.index[key("m").1], cache.slots[Int(index)].place == .small {
            put(&cache, "s\(i)", String(repeating: "b", count: 300))
            i += 1
        }
        // Leave one small entry beside "m" alone in main.
        while cache.statistics.entries > 2 {
            cache.evictFromSmall(sparing: -1)
        }
        #expect(cache.main.filter { cache.slots[Int($0)].place == .main }.count == 1)
        #expect(cache.smallBytes > 0 && cache.smallBytes < capacity / 10)
        let nearlyFull = String(repeating: "c", count: capacity - S3FIFOCache.entryOverhead - 1 - 50)
        put(&cache, "m", nearlyFull)
        #expect(get(&cache, "m") == nearlyFull)
        #expect(cache.statistics.bytes <= capacity)
        #expect(cache.invariantViolation() == nil)
    }

    @Test func neverExceedsItsByteBudget() {
        let capacity = 50 * S3FIFOCache.charge(keyLength: 8, valueLength: 100)
        var cache = S3FIFOCache(capacity: capacity)
        for i in 0..<2000 {
            put(&cache, String(format: "key%05d", i), String(repeating: "v", count: 100))
            #expect(cache.statistics.bytes <= capacity)
        }
        #expect(cache.statistics.entries == 50)
        #expect(cache.statistics.evictions == 1950)
    }

    @Test func entryLargerThanTheCacheIsNotKept() {
        var cache = S3FIFOCache(capacity: 1000)
        put(&cache, "big", String(repeating: "x", count: 2000))
        #expect(get(&cache, "big") == nil)
        #expect(cache.statistics.bytes == 0)
    }

    @Test func expiredEntryMissesAndIsReclaimed() {
        var cache = S3FIFOCache(capacity: 1 << 20)
        put(&cache, "t", "v", expiresAt: 100)
        #expect(get(&cache, "t", now: 99) == "v")
        #expect(get(&cache, "t", now: 100) == nil)
        #expect(cache.statistics.entries == 0)
    }

    @Test func sweepReclaimsExpiredWithoutReads() {
        var cache = S3FIFOCache(capacity: 1 << 20)
        for i in 0..<100 { put(&cache, "k\(i)", "v", expiresAt: i < 60 ? 50 : 0) }
        var cursor = 0
        var removed = 0
        for _ in 0..<10 {
            let r = cache.sweepExpired(now: 60, from: cursor, budget: 16)
            cursor = r.next
            removed += r.removed
        }
        #expect(removed == 60)
        #expect(cache.statistics.entries == 40)
    }

    /// The S3-FIFO property: a key read while in the small queue survives a scan of one-hit
    /// keys that would flush an LRU.
    @Test func frequentlyReadKeySurvivesAScan() {
        let capacity = 20 * S3FIFOCache.charge(keyLength: 6, valueLength: 10)
        var cache = S3FIFOCache(capacity: capacity)
        put(&cache, "hot000", "0123456789")
        for i in 0..<200 {
            #expect(get(&cache, "hot000") == "0123456789", "lost the hot key after \(i) scan keys")
            put(&cache, String(format: "s%05d", i), "0123456789")
        }
    }

    @Test func deletesAndReinsertsDoNotGrowQueuesForever() {
        var cache = S3FIFOCache(capacity: 1 << 20)
        for _ in 0..<10_000 {
            put(&cache, "churn", "v")
            let (b, h) = key("churn")
            cache.remove(b, hash: h, now: 1)
        }
        #expect(cache.small.count + cache.main.count < 2100)
        #expect(cache.slots.count < 2100)
    }

    /// Random writes, reads, deletes and expiries (seeded, so a failure repeats); the books
    /// must balance after every step.
    @Test(arguments: [1, 2, 3, 4])
    func randomOperationsKeepTheBooks(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let capacity = 40 * S3FIFOCache.charge(keyLength: 4, valueLength: 50)
        var cache = S3FIFOCache(capacity: capacity)
        var now: Int64 = 0
        for step in 0..<20_000 {
            let k = "k\(Int.random(in: 0..<300, using: &rng))"
            let (b, h) = key(k)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                let size = Int.random(in: 0..<200, using: &rng)
                let ttl: Int64 = Bool.random(using: &rng) ? 0 : now + Int64.random(in: 1..<50, using: &rng)
                cache.write(b, hash: h, value: ByteBuffer(repeating: 1, count: size), meta: EntryMeta(createdAt: now, expiresAt: ttl))
            case 4..<8:
                _ = cache.read(b, hash: h, now: now)
            case 8:
                cache.remove(b, hash: h, now: now)
            default:
                now += 5
                _ = cache.sweepExpired(now: now, from: Int.random(in: 0..<500, using: &rng), budget: 20)
            }
            if let problem = cache.invariantViolation() {
                Issue.record("step \(step): \(problem)")
                return
            }
        }
        #expect(cache.statistics.evictions > 0)
    }

    @Test func hashCollisionNeverReturnsAnotherKeysValue() {
        var cache = S3FIFOCache(capacity: 1 << 20)
        let a = ByteBuffer(string: "a"), b = ByteBuffer(string: "b")
        cache.write(a, hash: 7, value: ByteBuffer(string: "A"), meta: EntryMeta(createdAt: 0))
        #expect(cache.read(b, hash: 7, now: 1) == nil)
        cache.write(b, hash: 7, value: ByteBuffer(string: "B"), meta: EntryMeta(createdAt: 0))
        #expect(cache.read(b, hash: 7, now: 1).map { String(decoding: $0.value.bytes, as: UTF8.self) } == "B")
    }
}

