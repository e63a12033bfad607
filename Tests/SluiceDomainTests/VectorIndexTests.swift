import Testing
@testable import SluiceDomain

@Suite("Vector index")
struct VectorIndexTests {
    func randomVectors(_ n: Int, _ dim: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) } }
    }

    /// Reference: cosine by plain loops, no SIMD, no padding.
    func bruteForce(_ q: [Float], _ vs: [[Float]], k: Int) -> [Int] {
        func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let scores = vs.enumerated().map { i, v -> (Int, Float) in
            (i, zip(q, v).reduce(0) { $0 + $1.0 * $1.1 } / (norm(q) * norm(v)))
        }
        return scores.sorted { $0.1 > $1.1 }.prefix(k).map(\.0)
    }

    @Test(arguments: [3, 16, 100, 384])
    func exactSearchAgreesWithBruteForce(dim: Int) {
        let vs = randomVectors(500, dim, seed: UInt64(dim))
        var index = VectorIndex(dimension: dim)
        for (i, v) in vs.enumerated() { #expect(index.upsert(id: UInt64(i), vector: v) == true) }
        for q in randomVectors(20, dim, seed: 99) {
            let got = index.search(q, k: 5)
            #expect(got.map { Int($0.id) } == bruteForce(q, vs, k: 5))
            #expect(zip(got, got.dropFirst()).allSatisfy { $0.score >= $1.score })
        }
        // A stored vector finds itself with score 1.
        let me = index.search(vs[42], k: 1)[0]
        #expect(me.id == 42 && abs(me.score - 1) < 1e-5)
    }

    @Test func quantisedSearchRecallAndExactScores() {
        let vs = randomVectors(1000, 384, seed: 7)
        var index = VectorIndex(dimension: 384)
        for (i, v) in vs.enumerated() { index.upsert(id: UInt64(i), vector: v) }
        var agree = 0
        let queries = randomVectors(100, 384, seed: 8)
        for q in queries {
            let exact = index.search(q, k: 1)[0]
            let approx = index.searchQuantised(q, k: 1, candidates: 32)[0]
            if approx.id == exact.id {
                agree += 1
                #expect(approx.score == exact.score)  // re-ranked exactly
            }
        }
        #expect(agree >= 97, "recall@1 \(agree)/100")
    }

    @Test func removeAndReplaceKeepTheIndexConsistent() {
        var index = VectorIndex(dimension: 4)
        index.upsert(id: 1, vector: [1, 0, 0, 0])
        index.upsert(id: 2, vector: [0, 1, 0, 0])
        index.upsert(id: 3, vector: [0, 0, 1, 0])
        #expect(index.remove(id: 1) == true)
        #expect(index.remove(id: 1) == false)
        #expect(index.count == 2 && !index.contains(id: 1))
        #expect(index.search([1, 0, 0, 0], k: 3).map(\.id).sorted() == [2, 3])
        #expect(index.search([0, 0, 1, 0], k: 1)[0].id == 3)  // the moved row is still itself
        index.upsert(id: 2, vector: [0, 0, 0, 5])
        #expect(index.count == 2)
        #expect(index.search([0, 0, 0, 1], k: 1)[0] == VectorIndex.Match(id: 2, score: 1))
    }

    @Test func refusesWrongDimensionAndZeroVectors() {
        var index = VectorIndex(dimension: 3)
        #expect(index.upsert(id: 1, vector: [1, 2]) == false)
        #expect(index.upsert(id: 1, vector: [0, 0, 0]) == false)
        #expect(index.upsert(id: 1, vector: [.nan, 1, 1]) == false)
        #expect(index.search([1, 2], k: 1).isEmpty)
        #expect(index.count == 0)
    }

    @Test func filterOnlyReturnsAllowedIDs() {
        var index = VectorIndex(dimension: 2)
        for i in 0..<10 { index.upsert(id: UInt64(i), vector: [1, Float(i) / 10]) }
        let odd = index.search([1, 0], k: 3) { $0 % 2 == 1 }
        #expect(odd.map(\.id) == [1, 3, 5])
        #expect(index.searchQuantised([1, 0], k: 2) { $0 >= 8 }.map(\.id) == [8, 9])
    }
}
