import NIOCore
import Testing
@testable import SluiceDomain

@Suite("Concurrency slots and spend budgets")
struct SlotsAndBudgetsTests {
    let key = ByteBuffer(string: "gpu-pool")

    /// Whether an acquire in a shard was granted at once.
    static func granted(_ t: SlotTransition<Result<SlotQueue.Outcome, LimitError>>) -> Bool {
        if case .success(.granted) = t.value { return true }
        return false
    }

    static func acquire(_ s: inout RateLimiterShard, _ key: ByteBuffer, limit: Int, slot: UInt64, lease: Int64, now: Int64,
                        wait: Int64 = 0) -> SlotTransition<Result<SlotQueue.Outcome, LimitError>> {
        s.acquire(key, limit: limit, slot: slot, priority: 0, wait: wait, lease: lease, now: now)
    }

    @Test func slotsAreBoundedReleasedAndExpire() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(Self.granted(Self.acquire(&s, key, limit: 2, slot: 1, lease: 1000, now: 0)))
        #expect(Self.granted(Self.acquire(&s, key, limit: 2, slot: 2, lease: 5000, now: 100)))
        let full = Self.acquire(&s, key, limit: 2, slot: 3, lease: 1000, now: 200)
        #expect(full.value == .success(.refused(position: 1, retryAfter: 800)))
        #expect(s.release(key, slot: 2, now: 300).value == true)
        #expect(s.release(key, slot: 2, now: 300).value == false)  // released once only
        #expect(Self.granted(Self.acquire(&s, key, limit: 2, slot: 4, lease: 1000, now: 300)))
        // Slot 1 expires at 1000: a crashed holder does not keep it.
        #expect(Self.granted(Self.acquire(&s, key, limit: 2, slot: 5, lease: 1000, now: 1000)))
        #expect(s.release(key, slot: 1, now: 1000).value == false)
        s.sweep(now: 10_000)
        #expect(s.slots.isEmpty)
    }

    /// Through the shard: a queued request is granted by a release and counted as an entry
    /// while it waits; a cancelled one frees its entry.
    @Test func waitersAreEntriesAndGetReleasedSlots() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(Self.granted(Self.acquire(&s, key, limit: 1, slot: 1, lease: 1000, now: 0)))
        let queued = Self.acquire(&s, key, limit: 1, slot: 2, lease: 1000, now: 10, wait: 500)
        #expect(queued.value == .success(.queued(position: 1, estimatedWait: 990)))
        #expect(queued.nextWakeUp == 510)
        _ = Self.acquire(&s, key, limit: 1, slot: 3, lease: 1000, now: 10, wait: 500)
        #expect(s.slotsHeld == 3)
        let released = s.release(key, slot: 1, now: 20)
        #expect(released.value && released.grants.map(\.waiter) == [2])
        let cancelled = s.cancelWait(key, waiter: 3)
        #expect(cancelled)
        #expect(s.slotsHeld == 1)
        // The sweep leaves a key with waiters to whoever delivers its grants.
        _ = Self.acquire(&s, key, limit: 1, slot: 4, lease: 1000, now: 30, wait: 5000)
        s.sweep(now: 2_000)
        #expect(s.slots[key]?.waiters.map(\.id) == [4])
        let ticked = s.tickSlots(key, now: 2_000)
        #expect(ticked.grants.map(\.waiter) == [4])
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
        let (a, b, c) = (ByteBuffer(string: "a"), ByteBuffer(string: "b"), ByteBuffer(string: "c"))
        #expect(Self.granted(Self.acquire(&s, a, limit: 10, slot: 1, lease: 1000, now: 0)))
        #expect(Self.granted(Self.acquire(&s, a, limit: 10, slot: 2, lease: 1000, now: 0)))
        #expect(Self.granted(Self.acquire(&s, b, limit: 10, slot: 3, lease: 5000, now: 0)))
        // Three slots held in the shard: a fourth is refused whatever the key's own limit says,
        // and a refused new key leaves nothing behind.
        #expect(Self.acquire(&s, c, limit: 10, slot: 4, lease: 1000, now: 0).value == .failure(.tooManySlots(limit: 3)))
        #expect(s.slots[c] == nil)
        #expect(s.slotsHeld == 3)
        #expect(s.release(a, slot: 1, now: 10).value == true)
        #expect(s.slotsHeld == 2)
        #expect(Self.granted(Self.acquire(&s, c, limit: 10, slot: 4, lease: 1000, now: 10)))
        // Expiry frees room too: slot 2 (a) and 4 (c) run out at 1000 and 1010.
        #expect(Self.granted(Self.acquire(&s, a, limit: 10, slot: 5, lease: 1000, now: 1000)))
        #expect(s.slotsHeld == 3)
        s.sweep(now: 2000)
        #expect(s.slotsHeld == 1)  // b's slot 3 (until 5000)
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
