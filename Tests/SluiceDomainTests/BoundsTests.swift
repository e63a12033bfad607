import NIOCore
import Testing
@testable import SluiceDomain

/// Bounds on what clients can make the domain hold: leases, semantic bytes.
@Suite("Bounds on leases and semantic memory")
struct BoundsTests {
    @Test func aFullLeaseTableGrantsWithoutRecording() {
        var t = LeaseTable(maxLeases: 2)
        let granted1 = t.acquire(1, token: 11, now: 0, duration: 1000)
        #expect(granted1)
        let granted2 = t.acquire(2, token: 22, now: 0, duration: 1000)
        #expect(granted2)
        let granted3 = t.acquire(1, token: 99, now: 0, duration: 1000)
        #expect(!granted3)  // held: the others wait
        // Full: key 3's caller may compute (and its write is admitted), but nothing is kept.
        let granted4 = t.acquire(3, token: 33, now: 0, duration: 1000)
        #expect(granted4)
        #expect(t.count == 2)
        #expect(t.admits(3, token: 33, now: 1))
        #expect(t.holder(of: 3, now: 1) == nil)
        t.sweep(now: 1000)
        #expect(t.count == 0)
        let granted5 = t.acquire(3, token: 33, now: 1000, duration: 1000)
        #expect(granted5)
        #expect(t.holder(of: 3, now: 1001)?.token == 33)
    }

    @Test func semanticMemoryIsBoundedByBytes() throws {
        // Room for about three 1 KB entries: later ones take the oldest one's place.
        let cache = SemanticCache(maxTotalBytes: 3 * 1200)
        let response = ByteBuffer(repeating: 0x61, count: 1000)
        for i in 0..<10 {
            var v = [Float](repeating: 0, count: 4)
            v[i % 4] = 1
            v[(i + 1) % 4] = Float(i + 1)
            _ = try cache.set("ns", prompt: "prompt \(i)", response: response, vector: v, embedder: "e", scope: "", createdAt: Int64(i), expiresAt: 0).get()
        }
        #expect(cache.totalBytes <= 3 * 1200)
        #expect(cache.count("ns") == 3)
        // Replacing an entry with one the namespace cannot make room for is refused.
        let huge = ByteBuffer(repeating: 0x62, count: 10_000)
        let refused = cache.set("ns", prompt: "prompt 9", response: huge, vector: [1, 0, 0, 0], embedder: "e", scope: "", createdAt: 10, expiresAt: 0)
        guard case .failure(.full) = refused else { Issue.record("expected full, got \(refused)"); return }
        #expect(cache.totalBytes <= 3 * 1200)
        #expect(cache.read("ns") { $0.contains("prompt 9", scope: "") } == true)
        #expect(cache.read("ns") { $0.contains("prompt 0", scope: "") } == false)
        // Bytes come back when entries go.
        _ = cache.drop("ns")
        #expect(cache.totalBytes == 0)
    }

    @Test func aNewerWriteSurvivesTheEvictionOfItsOldRow() {
        var ns = SemanticNamespace(maxEntries: 10)
        _ = ns.set("p", response: ByteBuffer(string: "new"), vector: [1, 0], embedder: "e", scope: "", createdAt: 200, expiresAt: 0)
        let oldRowEvicted = ns.delete("p", scope: "", createdAtMost: 100)  // the file evicted the row written at 100
        #expect(!oldRowEvicted)
        #expect(ns.contains("p", scope: ""))
        let thisRowEvicted = ns.delete("p", scope: "", createdAtMost: 200)
        #expect(thisRowEvicted)
    }
}

@Suite("Semantic entries from files and streams")
struct TamperedSemanticEntryTests {
    /// An empty vector can only come from a tampered SQLite file or Redis stream (the edge
    /// refuses it); it once made an index of dimension 0 and trapped at start-up replay.
    @Test func anEmptyVectorIsRefusedNotTrapped() {
        var ns = SemanticNamespace(maxEntries: 10)
        let result = ns.set("hi there", response: ByteBuffer(string: "x"), vector: [], embedder: "client", scope: "",
                            createdAt: 1, expiresAt: 0)
        guard case .failure(.unusableVector) = result else {
            Issue.record("expected unusableVector, got \(result)")
            return
        }
        #expect(ns.count == 0)
        let cache = SemanticCache()
        let change = cache.set("ns", prompt: "p", response: ByteBuffer(), vector: [], embedder: "client", scope: "", createdAt: 1, expiresAt: 0)
        guard case .failure = change else {
            Issue.record("expected a failure")
            return
        }
    }
}
