import Foundation
import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// The shared-mode breaker (`Lua/breaker.lua` in a real redis-server) and its Swift twin
/// (`CircuitBreaker`) driven by the same seeded random operations, with time passed
/// explicitly; every decision must be the same, step by step.
@Suite("Circuit breaker: Lua script = Swift state machine", .serialized)
struct BreakerDifferentialTests {
    static let operations = 10_000

    @Test(arguments: [1, 2, 3] as [UInt64])
    func sameDecisionsStepByStep(seed: UInt64) async throws {
        let redis = try RedisServerProcess()
        let client = try await redis.connectedClient()
        defer { client.close() }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        #expect(client.isConnected)
        let lua = RedisBreakers(client: client, local: EmbeddedBreakers(registry: BreakerRegistry()), clock: .caller)
        let names = ["upstream-\(seed)-a", "upstream-\(seed)-b"]
        var swift = Dictionary(uniqueKeysWithValues: names.map { ($0, CircuitBreaker()) })
        var tickets: [String: [UInt64]] = [:]
        var rng = SplitMix64(seed: seed)
        var now: Int64 = 1_700_000_000_000

        func pick<T>(_ options: [T]) -> T { options[Int(rng.next() % UInt64(options.count))] }

        for step in 0..<Self.operations {
            now += pick([0, 0, 1, 10, 100, 500, 1000, 3000, 10_000, 40_000])
            let name = pick(names)
            let where_ = "seed \(seed) step \(step) on \(name)"
            switch rng.next() % 20 {
            case 0..<7:
                let expected = swift[name]!.allow(now: now)
                let got = try await lua.allow(name, now: now, on: loop).future(on: loop).get().get()
                #expect(got == expected, "allow at \(where_)")
                if got != expected { return }
                if let t = got.ticket { tickets[name, default: []].append(t) }
            case 7..<15:
                // Mostly live tickets, sometimes stale ones from before a transition, or made up.
                var list = tickets[name, default: []]
                let ticket = list.isEmpty || rng.next() % 10 == 0 ? rng.next() >> 20 : list.remove(at: Int(rng.next() % UInt64(list.count)))
                tickets[name] = list
                let outcome: CircuitBreaker.Outcome = rng.next() % 3 == 0 ? .failure : .success
                let latency: Int64? = pick([nil, 5, 100, 900, 1500, 40_000])
                let counted = swift[name]!.report(ticket: ticket, outcome, latency: latency, now: now)
                let expected = BreakerReport(counted: counted, state: swift[name]!.snapshot(now: now).state)
                let got = try await lua.report(name, ticket: ticket, outcome: outcome, latency: latency, now: now, on: loop).future(on: loop).get().get()
                #expect(got == expected, "report \(outcome) \(latency ?? 0) ms at \(where_)")
                if got != expected { return }
            case 15:
                let pin: CircuitBreaker.Forced? = pick([.open, .closed, nil, nil])
                swift[name]!.force(pin, now: now)
                _ = try await lua.force(name, pin, now: now, on: loop).future(on: loop).get().get()
            case 16, 17:
                var change = BreakerPolicyChange()
                if rng.next() % 2 == 0 { change.window = Int(rng.next() % 30) + 1 }
                if rng.next() % 2 == 0 { change.minimumCalls = Int(rng.next() % 12) + 1 }
                if rng.next() % 3 == 0 { change.failureRate = pick([0.1, 0.25, 1.0 / 3, 0.5, 0.9, 1]) }
                if rng.next() % 3 == 0 { change.slowCallMilliseconds = pick([50, 1000, 30_000]) }
                if rng.next() % 3 == 0 { change.slowCallRate = pick([0.2, 0.5, 1]) }
                if rng.next() % 3 == 0 { change.openMilliseconds = pick([100, 2000, 30_000, BreakerPolicy.millisecondsRange.upperBound]) }
                if rng.next() % 3 == 0 { change.probes = Int(rng.next() % 5) + 1 }
                let expected = swift[name]!.configure(change, now: now)
                let got = try await lua.configure(name, change, now: now, on: loop).future(on: loop).get().get()
                #expect(got == expected, "config \(change) at \(where_)")
                if got != expected { return }
            default:
                let expected = swift[name]!.snapshot(now: now)
                let got = try await lua.state(name, now: now, on: loop).future(on: loop).get().get()
                #expect(got == expected, "state at \(where_)")
                if got != expected { return }
            }
        }
    }
}
