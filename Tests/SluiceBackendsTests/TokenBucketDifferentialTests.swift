import Foundation
import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// The shared-mode bucket (`Lua/token_bucket.lua` in a real redis-server) and its Swift twin
/// (`RateLimiterShard`) driven by the same seeded random operations, with time passed
/// explicitly; every decision must be the same, step by step.
@Suite("Token bucket: Lua script = Swift state machine", .serialized)
struct TokenBucketDifferentialTests {
    static let operations = 10_000

    /// Limits the operations choose from: ordinary ones, odd rates (inexact divisions), zero
    /// (unlimited) budgets, small bursts, and the largest values clients may send.
    static let specs: [LimitSpec] = [
        LimitSpec(requestsPerMinute: 60, tokensPerMinute: 10_000),
        LimitSpec(requestsPerMinute: 7, tokensPerMinute: 333, requestBurst: 3, tokenBurst: 100),
        LimitSpec(requestsPerMinute: 0, tokensPerMinute: 1_000),
        LimitSpec(requestsPerMinute: 100, tokensPerMinute: 0),
        LimitSpec(requestsPerMinute: 1, tokensPerMinute: 1, requestBurst: 1, tokenBurst: 1),
        LimitSpec(requestsPerMinute: TokenBucket.maxTokens, tokensPerMinute: TokenBucket.maxTokens),
        LimitSpec(requestsPerMinute: TokenBucket.maxTokens - 1, tokensPerMinute: 999_999_937, requestBurst: 5, tokenBurst: TokenBucket.maxTokens),
        LimitSpec(requestsPerMinute: 3, tokensPerMinute: 7_000_000_000, requestBurst: 3, tokenBurst: 9_999_999_999),
    ]

    @Test(arguments: [1, 2, 3] as [UInt64])
    func sameDecisionsStepByStep(seed: UInt64) async throws {
        let redis = try RedisServerProcess()
        let client = RedisClient(endpoint: RedisEndpoint(host: "127.0.0.1", port: redis.port), connections: 1)
        defer { client.close() }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        try await waitConnected(client)
        let ttl: Int64 = 30_000
        let lua = RedisRateLimits(client: client, reservationTTL: ttl, local: EmbeddedRateLimits(limiter: RateLimiter()), clock: .caller)
        var swift = RateLimiterShard(maxKeys: 1000)
        var rng = SplitMix64(seed: seed)
        let keys = (0..<4).map { ByteBuffer(string: "tenant:\(seed):\($0)") }
        var now: Int64 = 1_700_000_000_000
        var reservations: [UInt64] = []

        func amount() -> Int64 {
            switch rng.next() % 10 {
            case 0: return 0
            case 1: return TokenBucket.maxTokens
            case 2: return Int64(rng.next() % UInt64(TokenBucket.maxTokens))
            case 3: return Int64(rng.next() % 1_000_000)
            default: return Int64(rng.next() % 200)
            }
        }

        for step in 0..<Self.operations {
            switch rng.next() % 10 {
            case 0: now += 0
            case 1...5: now += Int64(rng.next() % 1000)
            case 6, 7: now += Int64(rng.next() % 60_000)
            case 8: now += 1
            default: now += Int64(rng.next() % 10_000_000)
            }
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            let spec = Self.specs[Int(rng.next() % UInt64(Self.specs.count))]
            let where_ = "seed \(seed) step \(step)"
            switch rng.next() % 11 {
            case 0, 1, 2:
                let tokens = amount()
                let expected = swift.take(key, spec: spec, tokens: tokens, now: now)
                let got = try await lua.take(key, spec: spec, tokens: tokens, now: now, on: loop).future(on: loop).get()
                #expect(got == expected, "take \(tokens) under \(spec) at \(where_)")
                if got != expected { return }
            case 3, 4:
                let estimate = amount()
                let got = try await lua.reserve(key, spec: spec, estimate: estimate, now: now, on: loop).future(on: loop).get()
                let id = (try? got.get().id) ?? UInt64.random(in: 1 ... .max)
                let expected = swift.reserve(key, spec: spec, estimate: estimate, id: id, expiresAt: now + ttl, now: now)
                #expect(got.map(\.decision) == expected, "reserve \(estimate) under \(spec) at \(where_)")
                if got.map(\.decision) != expected { return }
                if case .success(let r) = got, let id = r.id { reservations.append(id) }
            case 5, 6:
                // Mostly open reservations (some expired by now), sometimes an unknown id.
                let id = reservations.isEmpty || rng.next() % 8 == 0 ? UInt64(rng.next() >> 1) : reservations.remove(at: Int(rng.next() % UInt64(reservations.count)))
                let actual = amount()
                let expected = swift.settle(id: id, actual: actual, now: now)
                let got = try await lua.settle(id: id, actual: actual, now: now, on: loop).future(on: loop).get()
                #expect(got == expected, "settle \(actual) at \(where_)")
                if got != expected { return }
            case 8:
                // A provider's 429: from nothing to a day (most a few seconds).
                let ms: Int64 = rng.next() % 4 == 0 ? Int64(rng.next() % 86_400_001) : Int64(rng.next() % 5_000)
                let expected = swift.penalize(key, for: ms, now: now)
                let got = try await lua.penalize(key, for: ms, now: now, on: loop).future(on: loop).get()
                #expect(got == expected, "penalize \(ms) at \(where_)")
                if got != expected { return }
            case 9:
                // The provider's counts: some unknown, some zero, some above the bucket's size.
                func count() -> Int64? {
                    switch rng.next() % 5 {
                    case 0: return nil
                    case 1: return 0
                    default: return amount()
                    }
                }
                let report = ProviderLimits(remainingRequests: count(), remainingTokens: count(),
                                            reset: rng.next() % 3 == 0 ? 0 : Int64(rng.next() % 120_000),
                                            spec: rng.next() % 2 == 0 ? spec : nil)
                let expected = swift.sync(key, remainingRequests: report.remainingRequests, remainingTokens: report.remainingTokens,
                                          reset: report.reset, spec: report.spec, now: now)
                let got = try await lua.sync(key, report, now: now, on: loop).future(on: loop).get()
                #expect(got == expected, "sync \(report) at \(where_)")
                if got != expected { return }
            default:
                let expected = swift.peek(key, now: now)
                let got = try await lua.peek(key, now: now, on: loop).future(on: loop).get()
                // The script keeps the rates, not the bursts, of the spec in force.
                #expect(got?.decision == expected?.0 && got?.spec.requestsPerMinute == expected?.1.requestsPerMinute
                        && got?.spec.tokensPerMinute == expected?.1.tokensPerMinute, "peek at \(where_)")
                if got?.decision != expected?.0 { return }
            }
        }
    }

    func waitConnected(_ client: RedisClient) async throws {
        for _ in 0..<200 where !client.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        #expect(client.isConnected)
    }
}
