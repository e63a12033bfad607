import ArgumentParser
import NIOCore
import SluiceDomain
import SluiceLoad
import Foundation

@main
struct SluiceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-bench",
        abstract: "Benchmarks for Sluice's parts.",
        subcommands: [Eviction.self, Memory.self, Vectors.self, GPTCache.self]
    )
}

struct Eviction: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hit ratio of the L1 (S3-FIFO) against a plain LRU of the same byte budget on a Zipf trace.",
        discussion: """
            Both caches see the same seeded trace; on a miss the key is inserted (demand fill).
            Value sizes vary per key (deterministic, --min-value..--max-value bytes) and both caches
            charge key + value + the L1's per-entry overhead, so the budgets are the same bytes.
            The L1 side is the real S3FIFOCache with real buffers.
            """
    )

    @Option(help: "Distinct keys.") var keys = 1_000_000
    @Option(help: "Requests in the trace.") var requests = 10_000_000
    @Option(help: "Zipf exponent.") var alpha = 0.99
    @Option(help: "Cache sizes as fractions of the whole working set's bytes, comma-separated.")
    var budgets = "0.001,0.01,0.05,0.1"
    @Option(help: "Smallest value in bytes.") var minValue = 64
    @Option(help: "Largest value in bytes.") var maxValue = 1024
    @Option(help: "Seed of the trace.") var seed: UInt64 = 42

    func run() throws {
        let trace = ZipfTrace(keys: keys, alpha: alpha)
        var rng = SplitMix64(seed: seed)
        let ranks = (0..<requests).map { _ in trace.sample(Double(rng.next() >> 11) / Double(1 << 53)) }
        func valueSize(_ rank: Int) -> Int {
            var g = SplitMix64(seed: UInt64(rank) &* 0x2545_F491_4F6C_DD1D)
            return minValue + Int(g.next() % UInt64(maxValue - minValue + 1))
        }
        let keyBytes = 16
        var workingSet = 0
        for r in 0..<keys { workingSet += S3FIFOCache.charge(keyLength: keyBytes, valueLength: valueSize(r)) }
        let hasher = KeyHasher(seed: seed)
        let keyBuffers: [ByteBuffer] = (0..<keys).map { r in
            var b = ByteBuffer()
            b.writeString(String(format: "key:%012d", r).padding(toLength: keyBytes, withPad: "x", startingAt: 0))
            return b
        }
        let hashes = keyBuffers.map { hasher.hash($0) }

        print("Zipf(\(alpha)) trace: \(keys) keys, \(requests) requests, values \(minValue)-\(maxValue) B, working set \(workingSet / 1_048_576) MiB")
        print()
        print("budget      bytes      LRU hit%   S3-FIFO hit%   S3-FIFO/LRU")
        for fraction in budgets.split(separator: ",").compactMap({ Double($0) }) {
            let capacity = Int(Double(workingSet) * fraction)
            var lru = LRUCache(capacity: capacity)
            var s3 = S3FIFOCache(capacity: capacity)
            var lruHits = 0, s3Hits = 0
            let value = ByteBuffer(repeating: 0x61, count: maxValue)
            for r in ranks {
                let size = valueSize(r)
                let charge = S3FIFOCache.charge(keyLength: keyBytes, valueLength: size)
                if lru.access(hashes[r], charge: charge) { lruHits += 1 }
                if s3.read(keyBuffers[r], hash: hashes[r], now: 0) != nil {
                    s3Hits += 1
                } else {
                    s3.write(keyBuffers[r], hash: hashes[r], value: value.getSlice(at: 0, length: size)!, meta: EntryMeta(createdAt: 0))
                }
            }
            let l = 100 * Double(lruHits) / Double(requests), s = 100 * Double(s3Hits) / Double(requests)
            print(String(format: "%6.1f%%  %9d   %8.2f   %12.2f   %11.3f", fraction * 100, capacity, l, s, s / l))
        }
    }
}
