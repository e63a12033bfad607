import ArgumentParser
import Foundation
import SluiceDomain

/// Search time of the semantic index (the in-process part of SEM.GET): exact, flat int8, and
/// int8 through inverted lists (IVF), with recall@1 against exact.
///
/// Data: `uniform` vectors (no structure at all: the worst case for lists) or `clustered` ones
/// (topics with variation around each, as sentence embeddings are). Queries: `random` (any
/// direction) or `near` (a stored vector moved a little: a rewording of a cached prompt, what a
/// semantic cache is asked).
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
    @Option(help: "Data: uniform or clustered.") var data = "uniform"
    @Option(help: "Clusters (topics) of clustered data.") var clusters = 10_000
    @Option(help: "Queries: random or near (a stored vector plus noise).") var query = "random"
    @Option(help: "Noise added to a stored vector to make a near query, per lane (data lanes are uniform in -1...1 (plus the topic's)).") var queryNoise: Float = 1.0
    @Option(help: "Inverted lists (0: none; -1: the index's own choice).") var lists = 0
    @Option(help: "Lists probed per search (0: the index's own choice).") var probes = 0
    @Flag(help: "Skip the flat exact-vs-int8 comparison (only exact for ground truth, and lists).") var listsOnly = false

    func run() throws {
        guard let level = VectorIndex.KernelLevel.allCases.first(where: { "\($0)" == kernels }) else {
            throw ValidationError("--kernels is best, avx2 or portable")
        }
        VectorIndex.useKernels(level)
        var rng = SplitMix64(seed: seed)
        guard ["uniform", "clustered"].contains(data), ["random", "near"].contains(query) else {
            throw ValidationError("--data is uniform or clustered; --query is random or near")
        }
        var vectors = [Float](repeating: 0, count: entries * dim)
        if data == "uniform" {
            for i in vectors.indices { vectors[i] = Float.random(in: -1...1, using: &rng) }
        } else {
            // Each vector: its topic's centre plus noise of about the same length, so vectors of
            // one topic have cosine ≈ 0.5 with each other and ≈ 0 with other topics.
            let centres = (0..<(max(clusters, 1) * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
            for e in 0..<entries {
                let c = Int(rng.next() % UInt64(max(clusters, 1)))
                for j in 0..<dim { vectors[e * dim + j] = centres[c * dim + j] + Float.random(in: -1...1, using: &rng) }
            }
        }
        var qs = [Float](repeating: 0, count: queries * dim)
        for q in 0..<queries {
            let source = Int(rng.next() % UInt64(entries))
            for j in 0..<dim {
                qs[q * dim + j] = query == "random" ? Float.random(in: -1...1, using: &rng)
                    : vectors[source * dim + j] + queryNoise * Float.random(in: -1...1, using: &rng)
            }
        }
        if let write {
            var bytes = Data(capacity: (vectors.count + qs.count) * 4)
            vectors.withUnsafeBytes { bytes.append(contentsOf: $0) }
            qs.withUnsafeBytes { bytes.append(contentsOf: $0) }
            try bytes.write(to: URL(fileURLWithPath: write))
        }
        var index = VectorIndex(dimension: dim)
        var buildSeconds = 0.0
        for i in 0..<entries {
            index.upsert(id: UInt64(i), vector: Array(vectors[i * dim ..< (i + 1) * dim]))
            // As the server does: lists trained when the index reaches listsFrom rows (or at the
            // end, for a smaller index given --lists), later rows join their nearest list.
            if lists != 0 && !index.isPartitioned && (index.count >= VectorIndex.listsFrom || i == entries - 1) {
                let start = DispatchTime.now().uptimeNanoseconds
                index.buildLists(lists: lists > 0 ? lists : nil, seed: seed)
                buildSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
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
        func p(_ t: [Double], _ q: Double) -> Double { t[min(t.count - 1, Int(Double(t.count) * q))] }
        func recall(_ approx: [UInt64]) -> Double { Double(zip(exact, approx).filter { $0 == $1 }.count) / Double(queries) }
        print("VectorIndex: \(entries) vectors × \(dim) (\(data)), \(queries) \(query) queries, k=1, one thread, kernels \(VectorIndex.kernels)")
        print(String(format: "exact  p50 %.3f ms  p99 %.3f ms", p(exactTimes, 0.5), p(exactTimes, 0.99)))
        if !listsOnly {
            let (int8Times, approx) = time { index.searchQuantised($0, k: 1, candidates: candidates)[0].id }
            print(String(format: "int8   p50 %.3f ms  p99 %.3f ms  (candidates %d)  recall@1 %.3f", p(int8Times, 0.5), p(int8Times, 0.99), candidates, recall(approx)))
        }
        if index.isPartitioned {
            let (ivfTimes, approx) = time { index.searchApproximate($0, k: 1, probes: probes > 0 ? probes : nil, candidates: candidates)[0].id }
            print(String(format: "lists  p50 %.3f ms  p99 %.3f ms  (%d lists, %d probed, candidates %d, trained and assigned in %.1f s)  recall@1 %.3f",
                         p(ivfTimes, 0.5), p(ivfTimes, 0.99), index.listCount, probes > 0 ? probes : index.listProbes, candidates, buildSeconds, recall(approx)))
        }
    }
}
