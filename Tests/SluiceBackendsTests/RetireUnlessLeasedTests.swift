import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// `ExactCache.deleteUnlessLeased` — LLM.GET retiring an outdated copy — in both modes: the
/// embedded twin (decided under the shard lock) and `Lua/retire_unless_leased.lua` in a real
/// redis-server. A live lease on the key is never ended by it; without one it deletes.
@Suite("Retiring an entry leaves a live lease alone", .serialized)
struct RetireUnlessLeasedTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func check(_ cache: any ExactCache, key: String) async throws {
        let probe = ExactCacheProbe(cache, key: key, loop: loop), now = probe.now
        func read(lease: Int64) async throws -> CacheRead { try await probe.read(lease: lease) }
        func retire() async throws -> Bool { try await probe.retire() }
        func write(_ value: String, _ condition: WriteCondition) async throws -> CacheWrite { try await probe.write(value, condition) }
        // An entry, no lease: retired, with its stale copy (read past its expiry: nothing).
        #expect(try await probe.write("copy", .always, expiresAt: now.wall + 1_000) == .stored)
        #expect(try await retire())
        let later = Timestamp(wall: now.wall + 5_000, monotonic: now.monotonic + 5_000)
        guard case .miss = try await probe.read(lease: 0, stale: 60_000, at: later) else {
            Issue.record("the retired entry's stale copy is still read")
            return
        }
        guard case .miss(let token?) = try await read(lease: 10_000) else {
            Issue.record("the miss after the retirement should grant the lease")
            return
        }
        // A reader that saw the copy before it went retires it too: the lease stays.
        #expect(try await retire() == false)
        guard case .miss(nil) = try await read(lease: 10_000) else {
            Issue.record("a second lease was granted")
            return
        }
        // A copy written for a reader leaves the holder's question alone; the holder's answer goes in.
        #expect(try await write("late copy", .copy(lease: 0)) == .leaseRefused)
        #expect(try await write("answer", .leaseHolder(token)) == .stored)
        guard case .hit(let value, _, _) = try await read(lease: 0) else {
            Issue.record("the holder's answer should be there")
            return
        }
        #expect(Array(value.bytes) == Array("answer".utf8))
        // Its write ended the lease: the entry can be retired again.
        #expect(try await retire())
        guard case .miss = try await read(lease: 0) else {
            Issue.record("retired entry still read")
            return
        }
    }

    @Test func embedded() async throws {
        let keyspace = Keyspace(l1Capacity: 1 << 20, shardCount: 2, tracksL2: false, staleRetention: 60_000)
        try await check(EmbeddedExactCache(keyspace: keyspace, store: nil), key: "llm:3:faq:0::q")
    }

    @Test func sharedThroughRedis() async throws {
        let redis = try RedisServerProcess()
        let client = try await redis.connectedClient()
        defer { client.close() }
        let keyspace = Keyspace(l1Capacity: 1 << 20, shardCount: 2, tracksL2: false, staleRetention: 60_000)
        let cache = RedisExactCache(keyspace: keyspace, client: client, invalidations: RedisInvalidations(client: client))
        try await check(cache, key: "llm:3:faq:0::q")
        try await check(cache, key: "llm:3:faq:0::{tagged}")
    }
}
