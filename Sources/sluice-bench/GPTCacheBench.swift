import ArgumentParser
import Foundation
import SluiceDomain

/// GPTCache's own semantic-cache benchmark, in process: the built-in embedder and the index,
/// without the protocol (the end-to-end run through SEM.* comes with those commands).
struct GPTCache: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gptcache",
        abstract: "Correct / wrong / miss on GPTCache's mock data with the built-in embedder.",
        discussion: """
            Stores every `origin` (its answer is its index), queries with every `similar`, and counts a
            correct hit when the pair's own answer (or an identical origin's) comes back, a wrong hit
            when another one does, a miss below the threshold. GPTCache's published result with its
            ONNX embedder at 0.8: 904 correct, 92 wrong, 3 misses.
            """
    )

    @Option(help: "GPTCache's mock_data.json.") var data = "../shared/eval/gptcache_mock_data.json"
    @Option(help: "Similarity thresholds, comma-separated.") var thresholds = "0.5,0.6,0.65,0.7,0.75,0.8"

    func run() throws {
        let pairs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: data))) as! [[String: String]]
        let embedder = try TokenEmbedder.builtIn()
        var index = VectorIndex(dimension: embedder.dimension)
        let origins = pairs.map { $0["origin"]! }
        let start = DispatchTime.now().uptimeNanoseconds
        for (i, o) in origins.enumerated() {
            if let v = embedder.embed(o) { index.upsert(id: UInt64(i), vector: v) }
        }
        let queries = pairs.map { embedder.embed($0["similar"]!) }
        let perEmbed = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(2 * pairs.count) / 1000
        let best = queries.map { q in q.flatMap { index.search($0, k: 1).first } }
        print("embedder \(embedder.version), \(pairs.count) pairs, \(String(format: "%.1f", perEmbed)) µs per embedding")
        for guarded in [false, true] {
            print(guarded ? "with the trap guard:" : "without the trap guard:")
            print("threshold   correct   wrong   miss")
            for t in thresholds.split(separator: ",").compactMap({ Float($0) }) {
                var correct = 0, wrong = 0, miss = 0
                for (i, b) in best.enumerated() {
                    guard let b, b.score >= t else { miss += 1; continue }
                    if guarded && TrapGuard.check(pairs[i]["similar"]!, origins[Int(b.id)]) != .ok { miss += 1; continue }
                    if Int(b.id) == i || origins[Int(b.id)] == origins[i] { correct += 1 } else { wrong += 1 }
                }
                print(String(format: "%9.2f   %7d   %5d   %4d", t, correct, wrong, miss))
            }
        }
    }
}
