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

    @Test func slotsHeldAreBoundedPerShardAndCountedAcrossKeys() throws {
        var s = RateLimiterShard(maxKeys: 3)
        #expect(try s.acquire(ByteBuffer(string: "a"), limit: 10, slot: 1, duration: 1000, now: 0).get().acquired)
        #expect(try s.acquire(ByteBuffer(string: "a"), limit: 10, slot: 2, duration: 1000, now: 0).get().acquired)
        #expect(try s.acquire(ByteBuffer(string: "b"), limit: 10, slot: 3, duration: 5000, now: 0).get().acquired)
        // Three slots held in the shard: a fourth is refused whatever the key's own limit says,
        // and a refused new key leaves nothing behind.
        #expect(s.acquire(ByteBuffer(string: "c"), limit: 10, slot: 4, duration: 1000, now: 0) == .failure(.tooManySlots(limit: 3)))
        #expect(s.slots[ByteBuffer(string: "c")] == nil)
        #expect(s.slotsHeld == 3)
        #expect(s.release(ByteBuffer(string: "a"), slot: 1, now: 10) == true)
        #expect(s.slotsHeld == 2)
        #expect(try s.acquire(ByteBuffer(string: "c"), limit: 10, slot: 4, duration: 1000, now: 10).get().acquired)
        // Expiry frees room too: slot 2 (a) and 4 (c) run out at 1000 and 1010.
        #expect(try s.acquire(ByteBuffer(string: "a"), limit: 10, slot: 5, duration: 1000, now: 1000).get().acquired)
        #expect(s.slotsHeld == 3)
        s.sweep(now: 2000)
        #expect(s.slotsHeld == 1)  // b's slot 3 (until 5000)
    }

    @Test func anExpiredHolderIsFoundEvenAfterAnEarlierRelease() throws {
        var pool = SlotPool()
        pool.add(1, expiresAt: 100)
        pool.add(2, expiresAt: 200)
        _ = pool.remove(1)
        #expect(pool.dropExpired(now: 150) == 0)  // the lower bound is stale, the scan finds nothing
        #expect(pool.dropExpired(now: 200) == 1)
        #expect(pool.holders.isEmpty)
    }

    @Test func openReservationsAreBoundedPerShard() throws {
        var s = RateLimiterShard(maxKeys: 2)
        let spec = LimitSpec(requestsPerMinute: 0, tokensPerMinute: 0)
        for id in 1...2 as ClosedRange<UInt64> {
            #expect(try s.reserve(key, spec: spec, estimate: 0, id: id, expiresAt: 600_000, now: 0).get().allowed)
        }
        #expect(s.reserve(key, spec: spec, estimate: 0, id: 3, expiresAt: 600_000, now: 0) == .failure(.tooManyReservations(limit: 2)))
        _ = s.settle(id: 1, actual: 0, now: 1)
        #expect(try s.reserve(key, spec: spec, estimate: 0, id: 3, expiresAt: 600_000, now: 1).get().allowed)
    }
}
