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
        let cancelled = s.cancelWait(key, waiter: 3).value
        #expect(cancelled)
        #expect(s.slotsHeld == 1)
        // The sweep leaves a key with waiters to whoever delivers its grants.
        _ = Self.acquire(&s, key, limit: 1, slot: 4, lease: 1000, now: 30, wait: 5000)
        s.sweep(now: 2_000)
        #expect(s.slots[key]?.waiters.map(\.id) == [4])
        let ticked = s.tickSlots(key, now: 2_000)
        #expect(ticked.grants.map(\.waiter) == [4])
    }

    static func money(_ text: String) -> Money { Money(Substring(text))! }

    @Test func budgetRefusesOverspendAndResetsWithTheWindow() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let (one, hour) = (Self.money("1"), BudgetPeriod.rolling(milliseconds: 60_000))
        let first = try s.spend(key, amount: Self.money("0.75"), budget: one, period: hour, near: 0.8, now: 0).get()
        #expect(first == SpendDecision(allowed: true, remaining: Self.money("0.25"), reset: 60_000))
        let over = try s.spend(key, amount: Self.money("0.5"), budget: one, period: hour, near: 0.8, now: 10_000).get()
        #expect(over == SpendDecision(allowed: false, remaining: Self.money("0.25"), reset: 50_000))
        #expect(try s.spend(key, amount: .zero, budget: one, period: hour, near: 0.8, now: 10_000).get().allowed, "a check: 0.25 left")
        #expect(try s.spend(key, amount: Self.money("0.25"), budget: one, period: hour, near: 0.8, now: 10_000).get().allowed)
        // Spent: a check (amount 0, or below a micro-unit) says so.
        #expect(try !s.spend(key, amount: .zero, budget: one, period: hour, near: 0.8, now: 10_000).get().allowed)
        #expect(try !s.spend(key, amount: Self.money("0.0000001"), budget: one, period: hour, near: 0.8, now: 10_000).get().allowed)
        let fresh = try s.spend(key, amount: Self.money("0.5"), budget: one, period: hour, near: 0.8, now: 60_000).get()
        #expect(fresh == SpendDecision(allowed: true, remaining: Self.money("0.5"), reset: 60_000))
    }

    /// Ten cents ten times is a dollar exactly (doubles would leave 0.9999999999999999 and
    /// refuse the tenth); a calendar day resets at midnight UTC whenever the first spend came.
    @Test func budgetsAreExactAndCalendarDaysResetAtMidnight() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let noon: Int64 = 20_000 * 86_400_000 + 43_200_000
        for i in 0..<10 {
            let d = try s.spend(key, amount: Self.money("0.1"), budget: Self.money("1"), period: .day, near: 0.8, now: noon + Int64(i)).get()
            #expect(d.allowed, "spend \(i + 1)")
        }
        #expect(s.budget(key, now: noon)?.spent == Self.money("1"))
        #expect(try !s.spend(key, amount: Self.money("0.000001"), budget: Self.money("1"), period: .day, near: 0.8, now: noon + 20).get().allowed)
        let nextDay = try s.spend(key, amount: Self.money("0.1"), budget: Self.money("1"), period: .day, near: 0.8,
                                  now: noon + 43_200_000).get()
        #expect(nextDay == SpendDecision(allowed: true, remaining: Self.money("0.9"), reset: 86_400_000))
    }

    /// The near-budget signal: from the fraction on, in every reply; "crossed" once per window.
    @Test func theNearSignalComesOncePerWindow() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let hour = BudgetPeriod.rolling(milliseconds: 3_600_000)
        func spend(_ amount: String, _ now: Int64) throws -> SpendDecision {
            try s.spend(key, amount: Self.money(amount), budget: Self.money("10"), period: hour, near: 0.75, now: now).get()
        }
        let below = try spend("7", 0)
        #expect(!below.near && !below.crossedNear)
        let crossing = try spend("0.5", 1)
        #expect(crossing.near && crossing.crossedNear)
        let after = try spend("1", 2)
        #expect(after.near && !after.crossedNear)
        let refused = try spend("5", 3)
        #expect(!refused.allowed && refused.near && !refused.crossedNear)
        let nextWindow = try spend("8", 3_600_000)
        #expect(nextWindow.near && nextWindow.crossedNear)
        #expect(s.budget(key, now: 3_600_000)?.warned == true)
        #expect(s.budget(key, now: 7_200_000) == nil)
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

    /// A random walk through the shard's transitions: the shard's count of slots and waiters is
    /// always the truth, and every request that queued ends exactly once — granted, timed out
    /// or cancelled.
    @Test func everyWaiterEndsOnceAndTheBooksBalance() throws {
        var rng = SplitMix64(seed: 21)
        var s = RateLimiterShard(maxKeys: 200)
        let keys = (0..<3).map { ByteBuffer(string: "k\($0)") }
        var now: Int64 = 0
        var queued = Set<UInt64>(), ended = [UInt64: Int](), held = [UInt64: ByteBuffer]()
        func note<T>(_ t: SlotTransition<T>, _ key: ByteBuffer) {
            for g in t.grants { ended[g.waiter, default: 0] += 1; held[g.waiter] = key }
            for id in t.timedOut { ended[id, default: 0] += 1 }
        }
        for id in UInt64(1)...4_000 {
            now += Int64(rng.next() % 15)
            let key = keys[Int(rng.next() % 3)]
            switch rng.next() % 5 {
            case 0, 1:
                let t = s.acquire(key, limit: 2, slot: id, priority: Int(rng.next() % 3), wait: Int64(rng.next() % 200),
                                  lease: Int64(rng.next() % 300) + 1, now: now)
                note(t, key)
                if case .success(.queued) = t.value { queued.insert(id) }
                if case .success(.granted) = t.value { held[id] = key }
            case 2:
                if let (slot, k) = held.randomElement(using: &rng) { note(s.release(k, slot: slot, now: now), k); held[slot] = nil }
            case 3:
                if let id = queued.randomElement(using: &rng), ended[id] == nil {
                    for k in keys where s.cancelWait(k, waiter: id).value { ended[id, default: 0] += 1 }
                }
            default:
                note(s.tickSlots(key, now: now), key)
            }
            #expect(s.slotsHeld == s.slots.values.reduce(0) { $0 + $1.entries })
        }
        now += 1_000
        for k in keys { note(s.tickSlots(k, now: now), k) }  // every wait has ended by now
        for id in queued { #expect(ended[id] == 1, "\(id) ended \(ended[id] ?? 0) times") }
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
