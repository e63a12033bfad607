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

    /// Every row is in exactly one list, with its own code, scale, tag and expiry, after a long
    /// random sequence of inserts, replacements and deletes (which move the last row into the hole).
    @Test func listsStayAnExactPartitionThroughChanges() {
        var rng = SplitMix64(seed: 11)
        var index = VectorIndex(dimension: 40)
        let vectors = Self.clustered(600, dim: 40, topics: 12, rng: &rng)
        for (i, v) in vectors.enumerated() { index.upsert(id: UInt64(i), vector: v, tag: UInt64(i % 3)) }
        index.buildLists(lists: 16, seed: 3)
        #expect(index.listCount == 16)
        #expect(index.quantized.isEmpty)  // the lists hold the codes now
        var live = Set(0..<600)
        for step in 0..<3_000 {
            let id = Int(rng.next() % 900)
            switch rng.next() % 3 {
            case 0:
                let removed = index.remove(id: UInt64(id))
                #expect(removed == live.contains(id))
                live.remove(id)
            default:
                let v = (0..<40).map { _ in Float.random(in: -1...1, using: &rng) }
                index.upsert(id: UInt64(id), vector: v, tag: UInt64(id % 3), expiresAt: Int64(step))
                live.insert(id)
            }
        }
        let lists = index.lists!
        #expect(lists.rows == index.count)
        var seen = [Int](repeating: 0, count: index.count)
        for members in lists.lists {
            #expect(members.codes.count == members.count * index.stride)
            for j in 0..<members.count {
                let row = Int(members.rows[j])
                seen[row] += 1
                let (code, scale) = VectorIndex.quantise(Array(index.vectors[row * index.stride ..< (row + 1) * index.stride]))
                #expect(Array(members.codes[j * index.stride ..< (j + 1) * index.stride]) == code)
                #expect(members.scales[j] == scale)
                #expect(members.tags[j] == index.tags[row])
                #expect(members.expiries[j] == index.expiries[row])
            }
        }
        #expect(seen.allSatisfy { $0 == 1 })
        #expect(Set(index.ids.map { Int($0) }) == live)
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

    /// k-means: centroids of unit length, one per list asked (at most one per sample row), and
    /// distinct starting rows even when the sample is as small as the list count.
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
        // Centroids of another shape are refused, not trapped on.
        var other = VectorIndex(dimension: 7)
        other.upsert(id: 1, vector: [1, 2, 3, 4, 5, 6, 7])
        let installed = other.installLists(index.listTraining(seed: 1)!.centroids())
        #expect(!installed)
        #expect(!other.isPartitioned)
    }

    /// The cache partitions a namespace once it reaches its threshold, off the write lock, and
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
}
