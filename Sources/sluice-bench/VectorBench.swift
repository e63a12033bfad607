import ArgumentParser
import Foundation
import SluiceDomain

/// Search time of the semantic index (the in-process part of SEM.GET) on random vectors.
struct Vectors: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time exact and int8 cosine search in VectorIndex; recall@1 of int8 against exact.",
        discussion: "--write saves the vectors (float32 little-endian: entries then queries) for benchmarks/faiss_compare.py."
    )

    @Option(help: "Stored vectors.") var entries = 100_000
    @Option(help: "Dimension.") var dim = 384
    @Option(help: "Queries timed.") var queries = 500
    @Option(help: "int8 candidates re-ranked exactly.") var candidates = 64
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Write the vectors to this file.") var write: String?
    @Option(help: "Kernels: best (what the CPU has), avx2, portable.") var kernels = "best"

    func run() throws {
        guard let level = VectorIndex.KernelLevel.allCases.first(where: { "\($0)" == kernels }) else {
            throw ValidationError("--kernels is best, avx2 or portable")
        }
        VectorIndex.useKernels(level)
        var rng = SplitMix64(seed: seed)
        let data = (0..<(entries * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
        let qs = (0..<(queries * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
        if let write {
            var bytes = Data(capacity: (data.count + qs.count) * 4)
            data.withUnsafeBytes { bytes.append(contentsOf: $0) }
            qs.withUnsafeBytes { bytes.append(contentsOf: $0) }
            try bytes.write(to: URL(fileURLWithPath: write))
        }
        var index = VectorIndex(dimension: dim)
        for i in 0..<entries { index.upsert(id: UInt64(i), vector: Array(data[i * dim ..< (i + 1) * dim])) }
        let queryVectors = (0..<queries).map { Array(qs[$0 * dim ..< ($0 + 1) * dim]) }

        func time(_ body: ([Float]) -> UInt64) -> ([Double], [UInt64]) {
            var times: [Double] = [], answers: [UInt64] = []
            for q in queryVectors {
                let start = DispatchTime.now().uptimeNanoseconds
                answers.append(body(q))
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            return (times.sorted(), answers)
        }
        let (exactTimes, exact) = time { index.search($0, k: 1)[0].id }
        let (int8Times, approx) = time { index.searchQuantised($0, k: 1, candidates: candidates)[0].id }
        let recall = Double(zip(exact, approx).filter { $0 == $1 }.count) / Double(queries)
        func p(_ t: [Double], _ q: Double) -> Double { t[min(t.count - 1, Int(Double(t.count) * q))] }
        print("VectorIndex: \(entries) vectors × \(dim), \(queries) queries, k=1, one thread, kernels \(VectorIndex.kernels)")
        print(String(format: "exact  p50 %.3f ms  p99 %.3f ms", p(exactTimes, 0.5), p(exactTimes, 0.99)))
        print(String(format: "int8   p50 %.3f ms  p99 %.3f ms  (candidates %d)  recall@1 %.3f", p(int8Times, 0.5), p(int8Times, 0.99), candidates, recall))
    }
}
