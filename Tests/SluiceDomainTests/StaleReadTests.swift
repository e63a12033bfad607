import NIOCore
import Testing
@testable import SluiceDomain

/// `CACHE.GET ... STALE ms` on a shard with a stale retention, time passed by hand: the window's
/// edges, the retention's bound, reclaiming after it, and every other read seeing the entry gone.
@Suite("Stale reads: expired entries kept for the retention")
struct StaleReadTests {
    let hasher = KeyHasher(seed: 3)

    func value(_ read: CacheShard.Read) -> String? {
        if case .hit(let v, _) = read { return String(decoding: v.bytes, as: UTF8.self) }
        return nil
    }

    @Test(arguments: [true, false])
    func windowEdgesAndReclaim(tracksL2: Bool) {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: tracksL2, staleRetention: 10_000)
        let key = ByteBuffer(string: "answer")
        let h = hasher.hash(key)
        shard.write(key, hash: h, value: ByteBuffer(string: "42"), meta: EntryMeta(createdAt: 0, expiresAt: 1_000))
        #expect(value(shard.read(key, hash: h, now: 999)) == "42")
        // Expired: every ordinary read misses (GET, EXISTS, TTL see it gone) ...
        if case .hit = shard.read(key, hash: h, now: 1_000) { Issue.record("an expired entry answered an ordinary read") }
        #expect(shard.expiry(key, hash: h, now: 1_000) == nil)
        // ... and a stale read finds it while it expired less than its window ago.
        #expect(value(shard.readStale(key, hash: h, now: 1_000, within: 1)) == "42")
        #expect(value(shard.readStale(key, hash: h, now: 1_499, within: 500)) == "42")
        if case .hit = shard.readStale(key, hash: h, now: 1_500, within: 500) { Issue.record("served beyond its window") }
        // A window wider than the retention reaches back only as far as the retention.
        if case .hit = shard.readStale(key, hash: h, now: 11_000, within: 1_000_000) { Issue.record("served beyond the retention") }
        #expect(value(shard.readStale(key, hash: h, now: 10_999, within: 1_000_000)) == "42")
        #expect(shard.counters.staleHits == 3)
        // The sweep leaves it until the retention ends, then reclaims it (and the directory entry).
        shard.sweep(now: Timestamp(wall: 10_999, monotonic: 0), budget: 100)
        #expect(shard.l1.statistics.entries == 1)
        shard.sweep(now: Timestamp(wall: 11_000, monotonic: 0), budget: 100)
        #expect(shard.l1.statistics.entries == 0)
        if tracksL2 { #expect(shard.directory?.isEmpty == true) }
        guard case .miss = shard.readStale(key, hash: h, now: 11_000, within: 10_000) else {
            Issue.record("reclaimed entry still found"); return
        }
    }

    @Test func withoutRetentionExpiredEntriesGoAtOnceAndAreNeverStale() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: false)
        let key = ByteBuffer(string: "k")
        let h = hasher.hash(key)
        shard.write(key, hash: h, value: ByteBuffer(string: "v"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        _ = shard.read(key, hash: h, now: 10)
        #expect(shard.l1.statistics.entries == 0)
        guard case .miss = shard.readStale(key, hash: h, now: 10, within: 60_000) else { Issue.record("stale without retention"); return }
    }

    /// A deleted key is gone, also for stale reads; a new write replaces the kept copy.
    @Test func deleteAndRewriteEndTheStaleCopy() {
        var shard = CacheShard(l1Capacity: 1 << 20, tracksL2: true, staleRetention: 60_000)
        let key = ByteBuffer(string: "k")
        let h = hasher.hash(key)
        shard.write(key, hash: h, value: ByteBuffer(string: "old"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        #expect(shard.delete(key, hash: h, now: 20) == false, "an expired key did not exist for DEL's count")
        guard case .miss = shard.readStale(key, hash: h, now: 20, within: 60_000) else { Issue.record("deleted key served stale"); return }
        shard.write(key, hash: h, value: ByteBuffer(string: "old"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        shard.write(key, hash: h, value: ByteBuffer(string: "new"), meta: EntryMeta(createdAt: 30, expiresAt: 40))
        #expect(value(shard.readStale(key, hash: h, now: 50, within: 60_000)) == "new")
        // An L2 value promoted over an expired L1 copy replaces it.
        shard.promote(entry: S3FIFOCache.entry(key: key, value: ByteBuffer(string: "fresh")), keyLength: key.readableBytes, hash: h,
                      meta: EntryMeta(createdAt: 60, expiresAt: 1_000), version: shard.directory?[h]?.version, now: 60)
        #expect(value(shard.read(key, hash: h, now: 61)) == "fresh")
    }
}
