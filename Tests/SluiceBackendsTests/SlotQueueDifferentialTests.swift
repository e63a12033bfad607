import Foundation
import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// The shared-mode slot queue (`Lua/slot_queue.lua` in a real redis-server) and its Swift twin
/// (``SlotQueue`` through ``RateLimiterShard``) driven by the same seeded random operations with
/// time passed by hand: every outcome, grant, ended wait and wake-up must be the same.
@Suite("Slot queue: Lua script = Swift state machine", .serialized)
struct SlotQueueDifferentialTests {
    static let operations = 4_000

    @Test(arguments: [1, 2, 3] as [UInt64])
    func sameTransitionsStepByStep(seed: UInt64) async throws {
        let redis = try RedisServerProcess()
        let client = try await redis.connectedClient()
        defer { client.close() }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let aging: Int64 = seed == 2 ? 50 : 1_000
        let maxWaiters = seed == 3 ? 3 : 10_000
        let lua = SlotScript(client: client, clock: .caller, agingInterval: aging, maxWaiters: maxWaiters)
        var swift = RateLimiterShard(maxKeys: 100_000)
        swift.slotAgingInterval = aging
        swift.maxWaitersPerKey = maxWaiters
        var rng = SplitMix64(seed: seed)
        let keys = (0..<3).map { ByteBuffer(string: "pool:\(seed):\($0)") }
        var now: Int64 = 1_700_000_000_000
        var ids: [UInt64] = []

        func known() -> UInt64 {
            ids.isEmpty || rng.next() % 6 == 0 ? UInt64(rng.next() >> 1) : ids[Int(rng.next() % UInt64(ids.count))]
        }
        func same(_ got: SlotScript.Reply, _ grants: [SlotQueue.Grant], _ timedOut: [UInt64], _ wake: Int64?, _ what: String) -> Bool {
            let wakeExpected = wake.map { max($0 - now, 0) }
            #expect(got.grants == grants, "grants of \(what)")
            #expect(Set(got.timedOut) == Set(timedOut), "ended waits of \(what)")
            #expect(got.wake == wakeExpected, "wake-up of \(what)")
            return got.grants == grants && Set(got.timedOut) == Set(timedOut) && got.wake == wakeExpected
        }

        for step in 0..<Self.operations {
            switch rng.next() % 8 {
            case 0: now += 0
            case 1...4: now += Int64(rng.next() % 300)
            case 5: now += 1
            case 6: now += Int64(rng.next() % 5_000)
            default: now += Int64(rng.next() % 120_000)
            }
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            let at = "seed \(seed) step \(step)"
            switch rng.next() % 10 {
            case 0...4:
                let request = SlotRequest(limit: Int(1 + rng.next() % 3),
                                          priority: rng.next() % 10 == 0 ? Int(rng.next() % 2_000_001) - 1_000_000 : Int(rng.next() % 5) - 2,
                                          wait: rng.next() % 4 == 0 ? 0 : Int64(1 + rng.next() % 10_000),
                                          lease: Int64(1 + rng.next() % 20_000), ticket: rng.next())  // 64-bit, as real tickets
                ids.append(request.ticket)
                let expected = swift.acquire(key, limit: request.limit, slot: request.ticket, priority: request.priority, wait: request.wait,
                                             lease: request.lease, now: now)
                let got = try await lua.acquire(key, request, channel: "", now: now, on: loop).get()
                let outcome: SlotQueue.Outcome? = switch got.kind {
                case 1: .granted(expiresAt: got.a)
                case 2: .queued(position: Int(got.a), estimatedWait: got.b)
                case 3: .refused(position: Int(got.a), retryAfter: got.b)
                default: nil
                }
                let swiftOutcome: SlotQueue.Outcome? = try? expected.value.get()
                #expect(outcome == swiftOutcome, "acquire \(request) at \(at)")
                guard outcome == swiftOutcome,
                      same(got, expected.grants, expected.timedOut, expected.nextWakeUp, "acquire at \(at)") else { return }
            case 5, 6:
                let slot = known()
                let expected = swift.release(key, slot: slot, now: now)
                let got = try await lua.call(.release, key, slot: slot, now: now, on: loop).get()
                #expect((got.kind == 1) == expected.value, "release at \(at)")
                guard (got.kind == 1) == expected.value, same(got, expected.grants, expected.timedOut, expected.nextWakeUp, "release at \(at)") else { return }
            case 7, 8:
                let expected = swift.tickSlots(key, now: now)
                let got = try await lua.run(.tick, key, now: now, [], on: loop).get()
                guard same(got, expected.grants, expected.timedOut, expected.nextWakeUp, "tick at \(at)") else { return }
            default:
                let slot = known()
                // Where the ticket stands, before and after a cancel (which does not tick).
                let queue = swift.slots[key]
                let standing: Int64 = queue?.holders[slot] != nil ? 2 : queue?.waiters.contains(where: { $0.id == slot }) == true ? 1 : 0
                let status = try await lua.call(.status, key, slot: slot, now: now, on: loop).get()
                #expect(status.kind == standing, "status at \(at)")
                let expected = swift.cancelWait(key, waiter: slot)
                let got = try await lua.call(.cancel, key, slot: slot, now: now, on: loop).get()
                #expect((got.kind == 1) == expected.value, "cancel at \(at)")
                #expect((got.b == 1) == (swift.slots[key]?.holders[slot] != nil), "cancel's holder flag at \(at)")
                guard status.kind == standing, (got.kind == 1) == expected.value,
                      same(got, [], [], expected.nextWakeUp, "cancel at \(at)") else { return }
            }
        }
    }
}
