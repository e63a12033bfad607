import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// `WriteCondition.copy` — LLM.GET writing back a semantic hit for the prompt asked — in both
/// modes: the embedded twin (decided under the shard lock) and `Lua/leased_write.lua` in a real
/// redis-server. A copy never covers an entry stored since the reader looked (an acknowledged
/// LLM.SET of the prompt), never ends another caller's lease, and fulfils its own (or ends it,
/// when an answer is there already). And `deleteKeepingLease`, a verdict's delete.
@Suite("A reader's copy never covers an answer", .serialized, .scratchDirectory)
struct ReaderCopyWriteTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func check(_ cache: any ExactCache, key: String) async throws {
        let probe = ExactCacheProbe(cache, key: key, loop: loop)
        func read(lease: Int64) async throws -> CacheRead { try await probe.read(lease: lease) }
        func write(_ value: String, _ condition: WriteCondition) async throws -> CacheWrite { try await probe.write(value, condition) }
        func value() async throws -> String? { try await probe.value() }
        func retire() async throws -> Bool { try await probe.retire() }
        func keepingLease() async throws -> Bool { try await probe.deleteKeepingLease() }
        func clear() async throws { try await probe.clear() }

        // Nothing there, no lease: the copy goes in.
        #expect(try await write("copy 1", .copy(lease: 0)) == .stored)
        #expect(try await value() == "copy 1")
        // An answer stored since the reader looked stays: the copy is not stored over it.
        #expect(try await write("answer", .always) == .stored)
        #expect(try await write("copy 2", .copy(lease: 0)) == .notStored)
        #expect(try await value() == "answer")

        // Another caller's live lease refuses a reader's copy.
        try await clear()
        guard case .miss(let token?) = try await read(lease: 10_000) else {
            Issue.record("the miss should grant the lease")
            return
        }
        #expect(try await write("copy 3", .copy(lease: 0)) == .leaseRefused)
        #expect(try await write("copy 3", .copy(lease: token &+ 1)) == .leaseRefused)
        #expect(try await value() == nil)
        // The holder's own copy fulfils the lease...
        #expect(try await write("holder's copy", .copy(lease: token)) == .stored)
        #expect(try await value() == "holder's copy")
        // ...and ends it: a retirement (which leaves a live lease alone) goes ahead.
        #expect(try await retire())
        guard case .miss(let second?) = try await read(lease: 10_000) else {
            Issue.record("the holder's copy should have ended its lease")
            return
        }
        // The holder looked, then somebody stored an answer (LLM.SET without LEASE): the
        // holder's copy does not cover it either — and its lease, which nobody else knows the
        // token of and which has nothing left to wait for, ends.
        #expect(try await write("answer 2", .always) == .stored)
        #expect(try await write("holder's late copy", .copy(lease: second)) == .notStored)
        #expect(try await value() == "answer 2")
        #expect(try await retire())
        #expect(try await value() == nil)

        // A verdict's delete keeps a lease: nothing there and a reader holding the lease, the
        // lease stays (a copy for another reader is still refused); an answer there goes.
        guard case .miss(let third?) = try await read(lease: 10_000) else {
            Issue.record("the miss should grant the lease")
            return
        }
        #expect(try await keepingLease() == false)
        #expect(try await write("copy 4", .copy(lease: 0)) == .leaseRefused)
        #expect(try await write("answer 3", .leaseHolder(third)) == .stored)
        #expect(try await keepingLease())
        #expect(try await value() == nil)
        try await clear()
    }

    @Test func embedded() async throws {
        let keyspace = Keyspace(l1Capacity: 1 << 20, shardCount: 2, tracksL2: false)
        try await check(EmbeddedExactCache(keyspace: keyspace, store: nil), key: "llm:3:faq:0::q")
    }

    @Test func embeddedWithTheFile() async throws {
        // An L1 too small to keep any entry: each one is in the file alone, and a copy is
        // still refused where one is.
        let store = try SQLiteStore(path: ScratchDirectory.databasePath())
        let keyspace = Keyspace(l1Capacity: 16, shardCount: 2, tracksL2: true)
        try await check(EmbeddedExactCache(keyspace: keyspace, store: store), key: "llm:3:faq:0::q")
        await store.close()
    }

    @Test func sharedThroughRedis() async throws {
        let redis = try RedisServerProcess()
        let client = try await redis.connectedClient()
        defer { client.close() }
        let keyspace = Keyspace(l1Capacity: 1 << 20, shardCount: 2, tracksL2: false)
        let cache = RedisExactCache(keyspace: keyspace, client: client, invalidations: RedisInvalidations(client: client))
        try await check(cache, key: "llm:3:faq:0::q")
        try await check(cache, key: "llm:3:faq:0::{tagged}")
    }
}
