import Testing
@testable import SluiceDomain

/// The slot queue as a state machine, on an injected clock (no sleeping): who gets a slot, in
/// what order, and when leases and waits end.
@Suite struct SlotQueueTests {
    /// Fills `q` to its limit with holders 1, 2, … at `now`, each leased for `lease` ms.
    static func full(_ q: inout SlotQueue, limit: Int, lease: Int64 = 60_000, now: Int64 = 0) {
        for i in 1...limit {
            let (outcome, _) = q.acquire(slot: UInt64(i), limit: limit, priority: 0, wait: 0, lease: lease, now: now)
            #expect(outcome == .granted(expiresAt: now + lease))
        }
    }

    @Test func higherPriorityFirstAndFirstComeWithinAPriority() {
        var q = SlotQueue(agingInterval: 1_000_000)
        Self.full(&q, limit: 1)
        // Queued in this order: low, high, mid, high again.
        for (id, priority) in [(10, 0), (11, 5), (12, 2), (13, 5)] as [(UInt64, Int)] {
            let (outcome, grants) = q.acquire(slot: id, limit: 1, priority: priority, wait: 10_000, lease: 1_000, now: 1)
            guard case .queued = outcome else { Issue.record("\(id): \(outcome)"); return }
            #expect(grants.isEmpty)
        }
        #expect(q.position(of: 11, now: 2) == 1)
        #expect(q.position(of: 13, now: 2) == 2)
        #expect(q.position(of: 12, now: 2) == 3)
        #expect(q.position(of: 10, now: 2) == 4)
        var order: [UInt64] = []
        var holder: UInt64 = 1
        for t in Int64(2)...5 {
            let (released, grants) = q.release(holder, now: t)
            #expect(released)
            #expect(grants.count == 1)
            holder = grants[0].waiter
            order.append(holder)
        }
        #expect(order == [11, 13, 12, 10])
    }

    /// A low priority that has waited long enough goes before a newer high one.
    @Test func agingLiftsALongWaiter() {
        var q = SlotQueue(agingInterval: 100)
        Self.full(&q, limit: 1)
        _ = q.acquire(slot: 20, limit: 1, priority: 0, wait: 100_000, lease: 1_000, now: 0)
        // 550 ms later a priority-5 request arrives: the old one has aged 5 levels (tie: the
        // earlier arrival wins) ...
        _ = q.acquire(slot: 21, limit: 1, priority: 5, wait: 100_000, lease: 1_000, now: 550)
        #expect(q.position(of: 20, now: 550) == 1)
        // ... while a priority-6 request still goes first.
        _ = q.acquire(slot: 22, limit: 1, priority: 6, wait: 100_000, lease: 1_000, now: 550)
        #expect(q.position(of: 22, now: 550) == 1)
        let (_, grants) = q.release(1, now: 560)
        #expect(grants.map(\.waiter) == [22])
        #expect(grants[0].waited == 10)
    }

    @Test func aWaitEndsAtItsDeadline() {
        var q = SlotQueue()
        Self.full(&q, limit: 2)
        _ = q.acquire(slot: 30, limit: 2, priority: 0, wait: 500, lease: 1_000, now: 100)
        #expect(q.nextWakeUp == 600)
        let early = q.tick(now: 599)
        #expect(early.timedOut.isEmpty)
        let (grants, timedOut) = q.tick(now: 600)
        #expect(grants.isEmpty && timedOut == [30])
        #expect(q.waiters.isEmpty && q.nextWakeUp == nil)
    }

    /// A holder that never releases loses its slot when its lease ends, to the next waiter.
    @Test func anEndedLeaseIsReclaimedForTheNextWaiter() {
        var q = SlotQueue()
        Self.full(&q, limit: 1, lease: 1_000)
        _ = q.acquire(slot: 40, limit: 1, priority: 0, wait: 5_000, lease: 2_000, now: 10)
        #expect(q.nextWakeUp == 1_000)  // the lease ends before the wait does
        let (grants, timedOut) = q.tick(now: 1_000)
        #expect(timedOut.isEmpty)
        #expect(grants == [SlotQueue.Grant(waiter: 40, expiresAt: 3_000, waited: 990)])
        #expect(q.holders == [40: 3_000])
        // The old holder's late release changes nothing.
        let late = q.release(1, now: 1_001)
        #expect(!late.released && late.grants.isEmpty)
        // Reclaim happens on any transition too: a new request after the lease ended gets it.
        var r = SlotQueue()
        Self.full(&r, limit: 1, lease: 100)
        let (outcome, _) = r.acquire(slot: 2, limit: 1, priority: 0, wait: 0, lease: 100, now: 100)
        #expect(outcome == .granted(expiresAt: 200))
    }

    @Test func aCancelledWaiterLeavesTheQueue() {
        var q = SlotQueue()
        Self.full(&q, limit: 1)
        _ = q.acquire(slot: 50, limit: 1, priority: 9, wait: 5_000, lease: 1_000, now: 0)
        _ = q.acquire(slot: 51, limit: 1, priority: 0, wait: 5_000, lease: 1_000, now: 0)
        let first = q.cancel(50), again = q.cancel(50)
        #expect(first && !again)
        #expect(q.position(of: 51, now: 1) == 1)
        let (_, grants) = q.release(1, now: 2)
        #expect(grants.map(\.waiter) == [51])
    }

    @Test func noWaitMeansRefusedWithARetryHint() {
        var q = SlotQueue()
        Self.full(&q, limit: 2, lease: 1_000, now: 0)
        let (outcome, _) = q.acquire(slot: 60, limit: 2, priority: 0, wait: 0, lease: 1_000, now: 300)
        #expect(outcome == .refused(position: 1, retryAfter: 700))  // the first lease ends at 1,000
        #expect(q.waiters.isEmpty)
        // Once releases are seen, the estimate is the mean hold time per round of `limit`.
        _ = q.release(1, now: 400)  // held 400 ms
        _ = q.acquire(slot: 61, limit: 2, priority: 0, wait: 0, lease: 1_000, now: 400)
        _ = q.acquire(slot: 62, limit: 2, priority: 0, wait: 10_000, lease: 1_000, now: 401)
        _ = q.acquire(slot: 63, limit: 2, priority: 0, wait: 10_000, lease: 1_000, now: 401)
        let (third, _) = q.acquire(slot: 64, limit: 2, priority: 0, wait: 10_000, lease: 1_000, now: 401)
        #expect(third == .queued(position: 3, estimatedWait: 800))  // two rounds of 400 ms
    }

    @Test func theQueueIsBounded() {
        var q = SlotQueue(maxWaiters: 2)
        Self.full(&q, limit: 1)
        for id in UInt64(70)...71 { _ = q.acquire(slot: id, limit: 1, priority: 0, wait: 1_000, lease: 1_000, now: 0) }
        let (outcome, _) = q.acquire(slot: 72, limit: 1, priority: 0, wait: 1_000, lease: 1_000, now: 0)
        guard case .refused(position: 3, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(q.waiters.count == 2)
    }

    /// A raised limit serves the queue at once; a lowered one lets holders finish.
    @Test func aChangedLimitTakesEffect() {
        var q = SlotQueue()
        Self.full(&q, limit: 1)
        _ = q.acquire(slot: 80, limit: 1, priority: 0, wait: 1_000, lease: 1_000, now: 0)
        let (outcome, grants) = q.acquire(slot: 81, limit: 3, priority: 0, wait: 1_000, lease: 1_000, now: 1)
        #expect(grants.map(\.waiter) == [80])
        #expect(outcome == .granted(expiresAt: 1_001))
        let (lowered, _) = q.acquire(slot: 82, limit: 1, priority: 0, wait: 0, lease: 1_000, now: 2)
        guard case .refused = lowered else { Issue.record("\(lowered)"); return }
        #expect(q.holders.count == 3)
    }

    /// Never more holders than the limit, whatever the sequence (a random walk of every
    /// transition, checked after each).
    @Test func neverMoreHoldersThanTheLimit() {
        var rng = SplitMix64(seed: 5)
        var q = SlotQueue(agingInterval: 50, maxWaiters: 20)
        var now: Int64 = 0
        var granted = Set<UInt64>()
        for id in UInt64(1)...5_000 {
            now += Int64(rng.next() % 20)
            switch rng.next() % 4 {
            case 0, 1:
                let (outcome, grants) = q.acquire(slot: id, limit: 3, priority: Int(rng.next() % 4), wait: Int64(rng.next() % 300),
                                                  lease: Int64(rng.next() % 400) + 1, now: now)
                if case .granted = outcome { granted.insert(id) }
                for g in grants { granted.insert(g.waiter) }
            case 2:
                if let slot = granted.randomElement(using: &rng) { _ = q.release(slot, now: now) }
            default:
                _ = q.tick(now: now)
            }
            #expect(q.holders.count <= 3)
            #expect(Set(q.waiters.map(\.id)).isDisjoint(with: q.holders.keys))
        }
    }
}
