import NIOCore
import SluiceDomain
import Testing
@testable import SluiceServer

@Suite("Housekeeping")
struct HousekeepingTests {
    @Test func expiredEntriesAreReclaimedWithoutBeingRead() {
        let keyspace = Keyspace(l1Capacity: 1 << 24, shardCount: 8, tracksL2: true)
        for i in 0..<2000 {
            let key = ByteBuffer(string: "k\(i)")
            let hash = keyspace.hasher.hash(key)
            let meta = EntryMeta(createdAt: 0, expiresAt: i % 2 == 0 ? 100 : 0)
            keyspace.withShard(hash: hash) { $0.write(key, hash: hash, value: ByteBuffer(string: "v"), meta: meta) }
        }
        var summary = keyspace.summary(now: 0)
        #expect(summary.l1.entries == 2000 && summary.keys == 2000)
        // One full round of ticks after the expiry: every shard's L1 slots and directory swept.
        for tick in 0..<(keyspace.shardCount * 2) {
            HousekeepingService.sweep(keyspace, tick: tick, now: Timestamp(wall: 100, monotonic: 100))
        }
        summary = keyspace.summary(now: 100)
        #expect(summary.l1.entries == 1000)
        #expect(summary.keys == 1000)
        #expect(summary.counters.expired >= 1000)
        #expect(summary.counters.hits == 0)  // nothing was read
    }
}
