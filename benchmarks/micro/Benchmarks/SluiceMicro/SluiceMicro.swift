import Benchmark
import NIOCore
import SluiceDomain
import SluiceProtocol

// Each benchmark runs its body `scaledIterations` times per sample; the framework reports
// wall clock, CPU time and mallocs per iteration. Inputs are built outside the measured part.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
                                           scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 1_000_000)

    // The request parser: a pipelined batch of 16 SETs of 256-byte values.
    Benchmark("RESP parse: 16 pipelined SETs") { benchmark in
        var batch = ByteBuffer()
        for i in 0..<16 {
            batch.writeString("*3\r\n$3\r\nSET\r\n$16\r\nkey:\(String(format: "%012d", i))\r\n$256\r\n")
            batch.writeRepeatingByte(0x78, count: 256)
            batch.writeString("\r\n")
        }
        for _ in benchmark.scaledIterations {
            var input = batch
            var parser = RESPRequestParser()
            var n = 0
            while let request = try parser.next(from: &input) {
                if case .command = request { n += 1 }
            }
            blackHole(n)
        }
    }

    // L1: reads of present keys and writes of new values, one shard, no lock.
    Benchmark("L1 (S3-FIFO) get, 100k keys") { benchmark in
        var cache = S3FIFOCache(capacity: 256 << 20)
        let keys = (0..<100_000).map { ByteBuffer(string: "key:\(String(format: "%012d", $0))") }
        let hasher = KeyHasher(seed: 1)
        let hashes = keys.map { hasher.hash($0) }
        let value = ByteBuffer(repeating: 0x61, count: 256)
        for i in keys.indices { cache.write(keys[i], hash: hashes[i], value: value, meta: EntryMeta(createdAt: 0)) }
        var rng = SplitMix64(seed: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let i = Int(rng.next() % 100_000)
            blackHole(cache.read(keys[i], hash: hashes[i], now: 1))
        }
    }

    Benchmark("L1 (S3-FIFO) set, 100k keys") { benchmark in
        var cache = S3FIFOCache(capacity: 256 << 20)
        let keys = (0..<100_000).map { ByteBuffer(string: "key:\(String(format: "%012d", $0))") }
        let hasher = KeyHasher(seed: 1)
        let hashes = keys.map { hasher.hash($0) }
        let value = ByteBuffer(repeating: 0x61, count: 256)
        var rng = SplitMix64(seed: 3)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let i = Int(rng.next() % 100_000)
            cache.write(keys[i], hash: hashes[i], value: value, meta: EntryMeta(createdAt: 0))
        }
    }

    Benchmark("token bucket: RL.TAKE on one shard, 10k keys") { benchmark in
        var shard = RateLimiterShard(maxKeys: 100_000)
        let keys = (0..<10_000).map { ByteBuffer(string: "rl:\($0)") }
        let spec = LimitSpec(requestsPerMinute: 1_000_000, tokensPerMinute: 100_000_000)
        var now: Int64 = 0
        var rng = SplitMix64(seed: 5)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            now &+= 1
            blackHole(shard.take(keys[Int(rng.next() % 10_000)], spec: spec, tokens: 1, now: now))
        }
    }

    Benchmark("circuit breaker: allow + report") { benchmark in
        var breaker = CircuitBreaker()
        var now: Int64 = 0
        for _ in benchmark.scaledIterations {
            now &+= 1
            let permission = breaker.allow(now: now)
            if let ticket = permission.ticket { blackHole(breaker.report(ticket: ticket, .success, latency: 5, now: now)) }
        }
    }

    Benchmark("embedder: one prompt") { benchmark in
        let embedder = try TokenEmbedder.builtIn()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(embedder.embed("How do I reset the password of my account on the billing portal?"))
        }
    }

    Benchmark("verifier: a paraphrase and a trap") { benchmark in
        guard let verifier = PromptVerifier.builtIn else { return }
        for _ in benchmark.scaledIterations {
            blackHole(verifier.refusal("How do I reset my password?", "How can I reset my password?"))
            blackHole(verifier.refusal("How do I enable two-factor authentication?", "How do I disable two-factor authentication?"))
        }
    }

    Benchmark("cosine scan, exact, 10k x 384") { benchmark in
        var index = VectorIndex(dimension: 384)
        var rng = SplitMix64(seed: 4)
        for i in 0..<10_000 { index.upsert(id: UInt64(i), vector: (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }) }
        let q = (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(index.search(q, k: 1)) }
    }

    Benchmark("cosine scan, int8, 10k x 384") { benchmark in
        var index = VectorIndex(dimension: 384)
        var rng = SplitMix64(seed: 4)
        for i in 0..<10_000 { index.upsert(id: UInt64(i), vector: (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }) }
        let q = (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(index.searchQuantised(q, k: 1)) }
    }
}
