import Foundation
import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// The shared-mode budget (`Lua/budget.lua` in a real redis-server) and its Swift twin
/// (``RateLimiterShard/spend(_:amount:budget:period:near:now:)`` with ``BudgetPeriod``) on the same
/// seeded spends, with the wall clock passed by hand across day, week, month and year ends
/// (leap days included): every decision and every window read must be the same.
@Suite("Budgets: Lua script = Swift state machine", .serialized)
struct BudgetDifferentialTests {
    static let operations = 4_000

    @Test(arguments: [1, 2] as [UInt64])
    func sameDecisionsStepByStep(seed: UInt64) async throws {
        let redis = try RedisServerProcess()
        let client = try await redis.connectedClient()
        defer { client.close() }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let lua = RedisRateLimits(client: client, reservationTTL: 1_000, local: EmbeddedRateLimits(limiter: RateLimiter()), clock: .caller)
        var swift = RateLimiterShard(maxKeys: 1_000)
        var rng = SplitMix64(seed: seed)
        let keys = (0..<3).map { ByteBuffer(string: "team:\(seed):\($0)") }
        // 2024-02-28 23:00 UTC: a leap day, a month end and, later, a year end.
        var now: Int64 = 1_709_161_200_000
        let periods: [BudgetPeriod] = [.day, .week, .month, .rolling(milliseconds: 3_600_000), .rolling(milliseconds: 1)]

        func money() -> Money {
            switch rng.next() % 8 {
            case 0: return .zero
            case 1: return Money.max
            case 2: return Money(micros: Int64(rng.next() % UInt64(Money.max.micros)))
            case 3: return Money(micros: Int64(rng.next() % 10_000_000))
            default: return Money(micros: Int64(rng.next() % 1_000) * 10_000)
            }
        }

        for step in 0..<Self.operations {
            switch rng.next() % 6 {
            case 0: now += 0
            case 1, 2: now += Int64(rng.next() % 60_000)
            case 3: now += Int64(rng.next() % 3_600_000)
            default: now += Int64(rng.next() % 40 * 3_600_000)
            }
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            let at = "seed \(seed) step \(step)"
            if rng.next() % 5 == 0 {
                let expected = swift.budget(key, now: now)
                let got = try await lua.budget(key, now: now, on: loop).future(on: loop).get()
                #expect(got?.spent == expected?.spent && got?.budget == expected?.budget && got?.endsAt == expected?.endsAt
                        && got?.period == expected?.period && got?.nearFraction == expected?.nearFraction, "budget at \(at)")
                if got?.endsAt != expected?.endsAt || got?.spent != expected?.spent { return }
                continue
            }
            let budget = rng.next() % 3 == 0 ? money() : Money(micros: Int64(1 + rng.next() % 100) * 1_000_000)
            let amount = rng.next() % 3 == 0 ? money() : Money(micros: Int64(rng.next() % 30) * 250_000)
            let period = periods[Int(rng.next() % UInt64(periods.count))]
            let near = [0.8, 0.5, 1.0, 0.333333, 1e-9][Int(rng.next() % 5)]
            let expected = swift.spend(key, amount: amount, budget: budget, period: period, near: near, now: now)
            let got = try await lua.spend(key, SpendRequest(amount: amount, budget: budget, period: period, near: near), now: now, on: loop)
                .future(on: loop).get()
            #expect(got == expected, "spend \(amount) of \(budget) per \(period) near \(near) at \(at)")
            if got != expected { return }
        }
    }
}
