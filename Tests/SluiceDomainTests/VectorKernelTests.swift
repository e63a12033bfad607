import CSluiceKernels
import Testing
@testable import SluiceDomain

/// Every kernel level this CPU has gives the plain loop's answers: int8 exactly, float within
/// rounding. Dimensions cover whole vectors and every kind of tail.
@Suite(.serialized) struct VectorKernelTests {
    static let dimensions = [1, 15, 16, 31, 32, 48, 63, 64, 65, 127, 384, 400]

    func levels() -> [VectorIndex.KernelLevel] { VectorIndex.KernelLevel.allCases }

    /// Forcing a level really changes the kernels (else the comparisons below compare the
    /// portable loop with itself).
    @Test func forcingALevelChangesTheKernels() {
        defer { VectorIndex.useKernels(.best) }
        VectorIndex.useKernels(.best)
        let best = VectorIndex.kernels
        VectorIndex.useKernels(.portable)
        #expect(VectorIndex.kernels == "portable")
        VectorIndex.useKernels(.avx2)  // the first vector level: avx2 on x86-64, neon on arm64
        #expect(VectorIndex.kernels == (best == "portable" ? "portable" : best.hasPrefix("neon") ? "neon" : "avx2"))
    }

    @Test func int8ScanMatchesThePlainLoop() {
        var rng = SplitMix64(seed: 7)
        defer { VectorIndex.useKernels(.best) }
        for dim in Self.dimensions {
            let stride = dim + 3  // rows not packed: the kernel must honour the stride
            let count = 37
            // The extremes ±127 included: the AVX2 pair sums are closest to saturating there.
            let q = (0..<dim).map { i in i % 5 == 0 ? Int8(127) : Int8(Int(rng.next() % 255) - 127) }
            let rows = (0..<(count * stride)).map { i in i % 7 == 0 ? Int8(-127) : Int8(Int(rng.next() % 255) - 127) }
            var expected = [Int32](repeating: 0, count: count)
            for r in 0..<count { for i in 0..<dim { expected[r] += Int32(q[i]) * Int32(rows[r * stride + i]) } }
            for level in levels() {
                VectorIndex.useKernels(level)
                var out = [Int32](repeating: -1, count: count)
                sluice_scan_i8(q, rows, count, stride, dim, &out)
                #expect(out == expected, "dim \(dim), kernels \(VectorIndex.kernels)")
            }
        }
    }

    @Test func floatScanMatchesThePlainLoop() {
        var rng = SplitMix64(seed: 8)
        defer { VectorIndex.useKernels(.best) }
        for dim in Self.dimensions {
            let stride = dim + 1
            let count = 19
            let q = (0..<dim).map { _ in Float.random(in: -1...1, using: &rng) }
            let rows = (0..<(count * stride)).map { _ in Float.random(in: -1...1, using: &rng) }
            var expected = [Float](repeating: 0, count: count)
            for r in 0..<count { for i in 0..<dim { expected[r] += q[i] * rows[r * stride + i] } }
            for level in levels() {
                VectorIndex.useKernels(level)
                var out = [Float](repeating: .nan, count: count)
                sluice_scan_f32(q, rows, count, stride, dim, &out)
                for r in 0..<count {
                    #expect(abs(out[r] - expected[r]) < 1e-4 * Float(dim), "dim \(dim), kernels \(VectorIndex.kernels)")
                }
            }
        }
    }

    @Test func searchesAgreeAcrossKernels() {
        var rng = SplitMix64(seed: 9)
        defer { VectorIndex.useKernels(.best) }
        var index = VectorIndex(dimension: 384)
        for i in 0..<2_000 { index.upsert(id: UInt64(i), vector: (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }) }
        let queries = (0..<20).map { _ in (0..<384).map { _ in Float.random(in: -1...1, using: &rng) } }
        VectorIndex.useKernels(.portable)
        let reference = queries.map { index.search($0, k: 3).map(\.id) }
        for level in levels() {
            VectorIndex.useKernels(level)
            #expect(queries.map { index.search($0, k: 3).map(\.id) } == reference, "\(VectorIndex.kernels)")
            // int8 with a generous re-rank finds the exact best.
            #expect(queries.map { index.searchQuantised($0, k: 1, candidates: 64)[0].id } == reference.map { $0[0] })
        }
    }
}
