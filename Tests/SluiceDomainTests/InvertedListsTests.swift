import Dispatch
import Foundation
import NIOCore
import Testing
@testable import SluiceDomain

/// The approximate search of large indexes: the lists stay an exact partition through every
/// kind of change, a search that probes every list is the exact search, and on clustered data
/// a partial probe finds the exact best for nearly every query near a stored vector.
@Suite struct InvertedListsTests {
    static func clustered(_ n: Int, dim: Int, topics: Int, rng: inout SplitMix64) -> [[Float]] {
        let centres = (0..<topics).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
        return (0..<n).map { _ in
            let c = centres[Int(rng.next() % UInt64(topics))]
            return c.map { $0 + Float.random(in: -1...1, using: &rng) }
        }
    }

    /// The partition's invariants: every id in exactly one list, at its recorded place, with its
    /// own code, scale, tag and expiry, in the list of its nearest centroid; no other ids.
    static func expectExactPartition(_ index: VectorIndex, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let lists = index.lists else { Issue.record("no lists", sourceLocation: sourceLocation); return }
        #expect(lists.isConsistent(), sourceLocation: sourceLocation)
        #expect(lists.entries == index.count, sourceLocation: sourceLocation)
        index.vectors.withUnsafeBufferPointer { rows in
            for (r, id) in index.ids.enumerated() {
                guard let l = lists.list(of: id) else { Issue.record("\(id) in no list", sourceLocation: sourceLocation); continue }
                #expect(l == lists.nearest(rows.baseAddress! + r * index.stride), sourceLocation: sourceLocation)
                let members = lists.lists[l]
                guard let j = members.ids.firstIndex(of: id) else { continue }
                let (code, scale) = VectorIndex.quantise(Array(rows[r * index.stride ..< (r + 1) * index.stride]))
                #expect(Array(members.codes[j * index.stride ..< (j + 1) * index.stride]) == code, sourceLocation: sourceLocation)
                #expect(members.scales[j] == scale && members.tags[j] == index.tags[r] && members.expiries[j] == index.expiries[r],
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// A random change: insert, replace (new vector, tag and expiry) or delete (which moves the
    /// index's last row into the hole).
    static func change(_ index: inout VectorIndex, _ live: inout Set<Int>, dim: Int, step: Int, rng: inout SplitMix64) {
        let id = Int(rng.next() % 900)
        if rng.next() % 3 == 0 {
            #expect(index.remove(id: UInt64(id)) == live.contains(id))
            live.remove(id)
        } else {
            let v = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            index.upsert(id: UInt64(id), vector: v, tag: UInt64((id + step) % 3), expiresAt: Int64(step))
            live.insert(id)
        }
    }

    /// The lists stay an exact partition through a long random sequence of changes.
    @Test func listsStayAnExactPartitionThroughChanges() {
        var rng = SplitMix64(seed: 11)
        var index = VectorIndex(dimension: 40)
        for (i, v) in Self.clustered(600, dim: 40, topics: 12, rng: &rng).enumerated() { index.upsert(id: UInt64(i), vector: v, tag: UInt64(i % 3)) }
        index.buildLists(lists: 16, seed: 3)
        #expect(index.listCount == 16)
        #expect(index.quantized.isEmpty)  // the lists hold the codes now
        Self.expectExactPartition(index)
        var live = Set(0..<600)
        for step in 0..<2_000 {
            Self.change(&index, &live, dim: 40, step: step, rng: &rng)
            if step % 97 == 0 { Self.expectExactPartition(index) }
        }
        Self.expectExactPartition(index)
        #expect(Set(index.ids.map { Int($0) }) == live)
        // Emptied, then grown again: the lists follow.
        for id in live { index.remove(id: UInt64(id)) }
        #expect(index.count == 0 && index.lists!.entries == 0)
        for i in 0..<50 { index.upsert(id: UInt64(i), vector: (0..<40).map { _ in Float.random(in: -1...1, using: &rng) }) }
        Self.expectExactPartition(index)
    }

    /// The server builds a partition range by range while the index changes under it (rows
    /// deleted move the last row into ranges already assigned): what it installs is exact.
    @Test func aPartitionBuiltWhileTheIndexChangesIsExact() {
        var rng = SplitMix64(seed: 17)
        var index = VectorIndex(dimension: 24)
        for (i, v) in Self.clustered(800, dim: 24, topics: 10, rng: &rng).enumerated() { index.upsert(id: UInt64(i), vector: v) }
        var live = Set(0..<800)
        guard var builder = index.beginPartition(lists: 20, seed: 4) else { Issue.record("not begun"); return }
        #expect(index.beginPartition(seed: 5) == nil)  // one at a time
        #expect(!index.wantsLists)
        builder.train()
        var start = 0
        var step = 0
        while start < index.count {
            index.assign(start ..< start + 100, into: &builder)
            start += 100
            for _ in 0..<40 {
                Self.change(&index, &live, dim: 24, step: step, rng: &rng)
                step += 1
            }
            // As the server does after assigning: catch up in rounds, changes coming in between.
            if start % 300 == 0 { index.catchUp(index.takeChanges(), into: &builder) }
        }
        let installed = index.finishPartition(builder)
        #expect(installed)
        Self.expectExactPartition(index)
        #expect(Set(index.ids.map { Int($0) }) == live)
        // Nothing to finish twice; an untrained builder or one of another shape is refused.
        let twice = index.finishPartition(builder)
        #expect(!twice)
        var other = VectorIndex(dimension: 7)
        other.upsert(id: 1, vector: [1, 2, 3, 4, 5, 6, 7])
        let untrained = other.beginPartition(seed: 1)!
        let fromUntrained = other.finishPartition(untrained)
        _ = other.beginPartition(seed: 1)
        let fromAnotherShape = other.finishPartition(builder)
        #expect(!fromUntrained && !fromAnotherShape)
        #expect(!other.isPartitioned)
    }

    /// Probing every list reads every row: the same answers as the exact scan.
    @Test func probingEveryListIsTheExactSearch() {
        var rng = SplitMix64(seed: 12)
        var index = VectorIndex(dimension: 64)
        for (i, v) in Self.clustered(2_000, dim: 64, topics: 30, rng: &rng).enumerated() { index.upsert(id: UInt64(i), vector: v) }
        let queries = (0..<30).map { _ in (0..<64).map { _ in Float.random(in: -1...1, using: &rng) } }
        let exact = queries.map { index.search($0, k: 3).map(\.id) }
        index.buildLists(lists: 32, seed: 1)
        #expect(queries.map { index.searchApproximate($0, k: 3, probes: 32, candidates: 200).map(\.id) } == exact)
    }

    /// The point of the lists: a partial probe (1 in 8 here) still finds the exact best for
    /// nearly every query that is a stored vector moved a little, as a reworded prompt is.
    @Test func aPartialProbeFindsTheNearestOfNearQueries() {
        var rng = SplitMix64(seed: 13)
        var index = VectorIndex(dimension: 96)
        let vectors = Self.clustered(8_000, dim: 96, topics: 200, rng: &rng)
        for (i, v) in vectors.enumerated() { index.upsert(id: UInt64(i), vector: v) }
        index.buildLists(lists: 64, seed: 2)
        var agree = 0
        for _ in 0..<200 {
            let source = vectors[Int(rng.next() % 8_000)]
            let q = source.map { $0 + Float.random(in: -1...1, using: &rng) }
            if index.searchApproximate(q, k: 1, probes: 8)[0].id == index.search(q, k: 1)[0].id { agree += 1 }
        }
        #expect(agree >= 190, "recall@1 \(agree)/200")
    }

    /// The server's search: the scope's tag and the expiry filter inside the lists; a scope with
    /// fewer than k rows in the probed lists is answered by the exact scan instead.
    @Test func filteredSearchThroughListsAndItsFallback() {
        var rng = SplitMix64(seed: 14)
        var index = VectorIndex(dimension: 32)
        let vectors = Self.clustered(3_000, dim: 32, topics: 40, rng: &rng)
        for (i, v) in vectors.enumerated() {
            // Tag 1: most rows; tag 2: three rows; rows divisible by 5 expired at time 100.
            index.upsert(id: UInt64(i), vector: v, tag: i < 3 ? 2 : 1, expiresAt: i % 5 == 0 ? 100 : 0)
        }
        index.buildLists(lists: 40, seed: 5)
        for _ in 0..<20 {
            let q = vectors[Int(rng.next() % 3_000)].map { $0 + Float.random(in: -0.5...0.5, using: &rng) }
            let found = index.search(q, k: 8, tag: 1, now: 200)
            #expect(found.count == 8)
            #expect(found.allSatisfy { $0.id >= 3 && $0.id % 5 != 0 })
            // Only three rows carry tag 2 (one expired by 200): the exact scan finds both live ones.
            #expect(Set(index.search(q, k: 8, tag: 2, now: 200).map(\.id)) == [1, 2])
        }
    }

    /// k-means: centroids of unit length, one per list asked (at most one per sample row).
    @Test func trainingGivesUnitCentroids() {
        var rng = SplitMix64(seed: 15)
        var index = VectorIndex(dimension: 20)
        for (i, v) in Self.clustered(50, dim: 20, topics: 5, rng: &rng).enumerated() { index.upsert(id: UInt64(i), vector: v) }
        index.buildLists(lists: 80, seed: 1)  // more lists than rows: one per row
        #expect(index.listCount == 50)
        let lists = index.lists!
        for c in 0..<lists.count {
            var norm: Float = 0
            for j in 0..<20 { norm += lists.centroids[c * index.stride + j] * lists.centroids[c * index.stride + j] }
            #expect(abs(norm - 1) < 1e-3)
        }
        Self.expectExactPartition(index)
    }

    /// The cache partitions a namespace once it reaches its threshold, on its background, and
    /// lookups keep answering from it (a stored prompt is still its own best match).
    @Test func theCachePartitionsALargeNamespace() {
        let cache = SemanticCache(partitionFrom: 700)
        var rng = SplitMix64(seed: 16)
        let vectors = Self.clustered(800, dim: 128, topics: 20, rng: &rng)
        for (i, v) in vectors.enumerated() {
            _ = cache.set("big", prompt: "prompt \(i)", response: ByteBuffer(string: "answer \(i)"), vector: v, embedder: "client",
                          scope: "", createdAt: 0, expiresAt: 0)
            #expect(cache.info("big")!.lists == (i + 1 >= 700 ? 16 : 0), "after \(i + 1) entries")
        }
        for i in stride(from: 0, to: 800, by: 37) {
            guard case .success(.hit(let m)) = cache.get("big", prompt: "prompt \(i)", vector: vectors[i], embedder: "client", scope: "",
                                                        minScore: 0.7, now: 1) else {
                Issue.record("no hit for \(i)"); continue
            }
            #expect(m.entry.prompt == "prompt \(i)")
        }
    }

    /// Entries with the same vector (or near-duplicates) are each found by their own prompt: the
    /// exact prompt is looked up by its text, not crowded out of the candidates.
    @Test func theSamePromptIsFoundAmongIdenticalVectors() {
        let cache = SemanticCache(partitionFrom: 100)
        let same = [Float](repeating: 0.5, count: 128)
        for i in 0..<150 {
            _ = cache.set("dup", prompt: "question \(i) about topic", response: ByteBuffer(string: "r\(i)"), vector: same, embedder: "client",
                          scope: "", createdAt: 0, expiresAt: 0)
        }
        #expect(cache.info("dup")!.lists > 0)
        for i in stride(from: 0, to: 150, by: 7) {
            guard case .success(.hit(let m)) = cache.get("dup", prompt: "question \(i) about topic", vector: same, embedder: "client",
                                                        scope: "", minScore: 0.7, now: 1) else {
                Issue.record("question \(i) not found"); continue
            }
            #expect(m.entry.prompt == "question \(i) about topic")
        }
        // In another scope the prompt is not the same question.
        if case .success(.hit) = cache.get("dup", prompt: "question 3 about topic", vector: same, embedder: "client", scope: "other",
                                           minScore: 0.7, now: 1) {
            Issue.record("hit across scopes")
        }
    }

    /// The background build on another thread while this one keeps writing, deleting, reading
    /// and dropping another namespace (run under TSan by scripts/sanitizers.sh): the lists come
    /// out exact and every live entry is found.
    @Test func aBackgroundPartitionRacesWritesSafely() {
        let done = DispatchSemaphore(value: 0)
        let cache = SemanticCache(partitionFrom: 600, background: { work in
            Thread.detachNewThread {
                work()
                done.signal()
            }
        })
        var rng = SplitMix64(seed: 18)
        let vectors = Self.clustered(1_500, dim: 128, topics: 30, rng: &rng)
        func put(_ i: Int, _ ns: String = "big") {
            _ = cache.set(ns, prompt: "p\(i)", response: ByteBuffer(string: "a\(i)"), vector: vectors[i], embedder: "client",
                          scope: "", createdAt: 0, expiresAt: 0)
        }
        for i in 0..<600 { put(i) }  // the 600th set starts the build
        for i in 600..<1_500 {
            put(i)
            if i % 3 == 0 { _ = cache.write("big", create: false) { $0.delete("p\(i - 300)", scope: "") } }
            if i % 50 == 0 {
                put(i, "other")
                _ = cache.drop("other")
            }
            _ = cache.get("big", prompt: "p\(i)", vector: vectors[i], embedder: "client", scope: "", minScore: 0.7, now: 1)
        }
        #expect(done.wait(timeout: .now() + 60) == .success)
        #expect(cache.info("big")!.lists > 0)
        cache.read("big") { ns in Self.expectExactPartition(ns.index!) }
        for i in stride(from: 1_499, to: 0, by: -41) where !(i >= 300 && i < 1_200 && (i + 300) % 3 == 0) {
            guard case .success(.hit(let m)) = cache.get("big", prompt: "p\(i)", vector: vectors[i], embedder: "client", scope: "",
                                                        minScore: 0.7, now: 1) else {
                Issue.record("no hit for p\(i)"); continue
            }
            #expect(m.entry.prompt == "p\(i)")
        }
    }
}
