import NIOCore
import NIOEmbedded
import SluiceBackends
import SluiceDomain
import Synchronization
import Testing

/// RL.ACQUIRE ... WAIT in the embedded capability: a queued request holds no thread, is answered
/// when a slot is released or a lease ends, or as not granted when its wait ends or its client
/// leaves. An embedded event loop and a manual clock: time only moves when the test moves it.
@Suite struct SlotWaitTests {
    final class Clock: TimeSource {
        let monotonic = Atomic<Int64>(1_000)
        func nowMilliseconds() -> Int64 { 1_700_000_000_000 + monotonic.load(ordering: .relaxed) }
        func monotonicMilliseconds() -> Int64 { monotonic.load(ordering: .relaxed) }
    }

    let loop = EmbeddedEventLoop()
    let clock = Clock()
    let key = ByteBuffer(string: "gpu")

    func limits() -> EmbeddedRateLimits { EmbeddedRateLimits(limiter: RateLimiter(shardCount: 1), clock: clock) }

    var now: Int64 { clock.monotonicMilliseconds() }

    /// Moves both clocks: the manual one the limiter reads and the loop's timers.
    func advance(_ ms: Int64) {
        clock.monotonic.add(ms, ordering: .relaxed)
        loop.advanceTime(by: .milliseconds(ms))
    }

    func answer(_ d: Deferred<Result<SlotDecision, LimitError>>) -> SlotDecision? {
        switch d {
        case .ready(let r): return try? r.get()
        case .later(let f):
            loop.run()
            var out: SlotDecision?
            f.whenSuccess { out = try? $0.get() }
            loop.run()
            return out
        }
    }

    func pending(_ d: Deferred<Result<SlotDecision, LimitError>>) -> EventLoopFuture<Result<SlotDecision, LimitError>>? {
        if case .later(let f) = d { return f }
        return nil
    }

    func value(_ f: EventLoopFuture<Result<SlotDecision, LimitError>>) -> SlotDecision? {
        var out: SlotDecision?
        f.whenSuccess { out = try? $0.get() }
        loop.run()
        return out
    }

    @Test func aReleaseAnswersTheBestWaiter() throws {
        let l = limits()
        let holder = answer(l.acquire(key, SlotRequest(limit: 1, lease: 10_000), now: now, on: loop))!
        #expect(holder.granted)
        let low = pending(l.acquire(key, SlotRequest(limit: 1, priority: 0, wait: 5_000, lease: 1_000, ticket: 7), now: now, on: loop))!
        let high = pending(l.acquire(key, SlotRequest(limit: 1, priority: 3, wait: 5_000, lease: 1_000, ticket: 8), now: now, on: loop))!
        #expect(value(high) == nil && value(low) == nil)  // both wait
        advance(100)
        guard case .ready(let released) = l.release(key, slot: holder.slot!, now: now, on: loop) else { Issue.record("later"); return }
        #expect(released)
        #expect(value(high) == .granted(8, waited: 100))
        #expect(value(low) == nil)
        _ = l.release(key, slot: 8, now: now, on: loop)
        #expect(value(low) == .granted(7, waited: 100))
    }

    @Test func aWaitEndsNotGranted() throws {
        let l = limits()
        _ = answer(l.acquire(key, SlotRequest(limit: 1, lease: 60_000), now: now, on: loop))
        let waiting = pending(l.acquire(key, SlotRequest(limit: 1, wait: 500, lease: 1_000, ticket: 9), now: now, on: loop))!
        advance(499)
        #expect(value(waiting) == nil)
        advance(2)
        let d = value(waiting)
        #expect(d?.granted == false && d?.queuePosition == 1)
        #expect(l.limiter.summary().slotsHeld == 1)  // it left the queue
    }

    /// The holder never releases: when its lease ends the waiter gets the slot, without anyone
    /// calling in (a timer on the waiter's loop).
    @Test func anEndedLeaseWakesTheWaiter() throws {
        let l = limits()
        _ = answer(l.acquire(key, SlotRequest(limit: 1, lease: 300), now: now, on: loop))
        let waiting = pending(l.acquire(key, SlotRequest(limit: 1, wait: 5_000, lease: 1_000, ticket: 10), now: now, on: loop))!
        advance(299)
        #expect(value(waiting) == nil)
        advance(2)
        #expect(value(waiting) == .granted(10, waited: 301))
    }

    @Test func aClientThatLeavesLeavesTheQueue() throws {
        let l = limits()
        let holder = answer(l.acquire(key, SlotRequest(limit: 1, lease: 60_000), now: now, on: loop))!
        let gone = pending(l.acquire(key, SlotRequest(limit: 1, priority: 5, wait: 5_000, lease: 1_000, ticket: 11), now: now, on: loop))!
        let stays = pending(l.acquire(key, SlotRequest(limit: 1, wait: 5_000, lease: 1_000, ticket: 12), now: now, on: loop))!
        l.cancelWait(key, ticket: 11)
        #expect(value(gone)?.granted == false)
        _ = l.release(key, slot: holder.slot!, now: now, on: loop)
        #expect(value(stays) == .granted(12, waited: 0))
    }

    /// A waiter granted from the queue that never releases: its lease end wakes the next one
    /// (the key's timer is re-armed by the release that granted it, not only by requests).
    @Test func theLeaseOfAGrantedWaiterIsWatchedToo() throws {
        let l = limits()
        let first = answer(l.acquire(key, SlotRequest(limit: 1, lease: 86_400_000), now: now, on: loop))!
        let b = pending(l.acquire(key, SlotRequest(limit: 1, wait: 60_000, lease: 100, ticket: 20), now: now, on: loop))!
        let c = pending(l.acquire(key, SlotRequest(limit: 1, wait: 60_000, lease: 100, ticket: 21), now: now, on: loop))!
        advance(1_000)
        _ = l.release(key, slot: first.slot!, now: now, on: loop)
        #expect(value(b) == .granted(20, waited: 1_000))
        advance(99)
        #expect(value(c) == nil)
        advance(2)  // b's lease of 100 ms ended: c gets the slot, without anyone calling in
        #expect(value(c) == .granted(21, waited: 1_101))
    }

    /// Many waiters with different waits: each is answered at its own deadline, in order, by
    /// one timer per key (not one per waiter, each re-scanning the whole queue).
    @Test func waitsEndOneByOneFromOneTimer() throws {
        let l = limits()
        _ = answer(l.acquire(key, SlotRequest(limit: 1, lease: 86_400_000), now: now, on: loop))
        var futures: [EventLoopFuture<Result<SlotDecision, LimitError>>] = []
        for i in 0..<50 {
            futures.append(pending(l.acquire(key, SlotRequest(limit: 1, wait: Int64(100 + 10 * i), lease: 100, ticket: UInt64(100 + i)),
                                             now: now, on: loop))!)
        }
        #expect(l.armedTimers == 1)
        for i in 0..<50 {
            advance(i == 0 ? 101 : 10)
            #expect(value(futures[i])?.granted == false, "waiter \(i)")
            if i + 1 < 50 { #expect(value(futures[i + 1]) == nil, "waiter \(i + 1) too early") }
        }
        #expect(l.limiter.summary().slotsHeld == 1)
    }

    /// A client that leaves after it was granted gets no second answer (and keeps the slot
    /// until released: the command releases it when it sees the client gone).
    @Test func aCancelAfterTheGrantChangesNothing() throws {
        let l = limits()
        let holder = answer(l.acquire(key, SlotRequest(limit: 1, lease: 60_000), now: now, on: loop))!
        let w = pending(l.acquire(key, SlotRequest(limit: 1, wait: 5_000, lease: 1_000, ticket: 30), now: now, on: loop))!
        _ = l.release(key, slot: holder.slot!, now: now, on: loop)
        l.cancelWait(key, ticket: 30)
        #expect(value(w) == .granted(30, waited: 0))
        #expect(l.limiter.summary().slotsHeld == 1)
    }
}
