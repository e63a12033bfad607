import NIOCore
import Testing
@testable import SluiceDomain

@Suite("Concurrency slots and spend budgets")
struct SlotsAndBudgetsTests {
    let key = ByteBuffer(string: "gpu-pool")

    @Test func slotsAreBoundedReleasedAndExpire() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(try s.acquire(key, limit: 2, slot: 1, duration: 1000, now: 0).get().acquired)
        #expect(try s.acquire(key, limit: 2, slot: 2, duration: 5000, now: 100).get().acquired)
        let full = try s.acquire(key, limit: 2, slot: 3, duration: 1000, now: 200).get()
        #expect(full == SlotDecision(acquired: false, slot: nil, inUse: 2, retryAfter: 800))
        #expect(s.release(key, slot: 2, now: 300) == true)
        #expect(s.release(key, slot: 2, now: 300) == false)  // released once only
        #expect(try s.acquire(key, limit: 2, slot: 4, duration: 1000, now: 300).get().acquired)
        // Slot 1 expires at 1000: a crashed holder does not keep it.
        #expect(try s.acquire(key, limit: 2, slot: 5, duration: 1000, now: 1000).get().acquired)
        #expect(s.release(key, slot: 1, now: 1000) == false)
        s.sweep(now: 10_000)
        #expect(s.slots.isEmpty)
    }

    @Test func budgetRefusesOverspendAndResetsWithTheWindow() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let first = try s.spend(key, amount: 0.75, budget: 1.0, period: 60_000, now: 0).get()
        #expect(first == SpendDecision(allowed: true, remaining: 0.25, reset: 60_000))
        let over = try s.spend(key, amount: 0.5, budget: 1.0, period: 60_000, now: 10_000).get()
        #expect(over == SpendDecision(allowed: false, remaining: 0.25, reset: 50_000))
        #expect(try s.spend(key, amount: 0.25, budget: 1.0, period: 60_000, now: 10_000).get().allowed)
        let fresh = try s.spend(key, amount: 0.5, budget: 1.0, period: 60_000, now: 60_000).get()
        #expect(fresh == SpendDecision(allowed: true, remaining: 0.5, reset: 60_000))
    }
}
