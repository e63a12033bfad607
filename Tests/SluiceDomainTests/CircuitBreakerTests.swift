import Testing
@testable import SluiceDomain

@Suite("Circuit breaker")
struct CircuitBreakerTests {
    func policy() -> BreakerPolicy {
        var p = BreakerPolicy()
        p.window = 10
        p.minimumCalls = 4
        p.failureRate = 0.5
        p.slowCallMilliseconds = 1000
        p.slowCallRate = 0.5
        p.openMilliseconds = 5000
        p.probes = 2
        return p
    }

    func call(_ b: inout CircuitBreaker, _ outcome: CircuitBreaker.Outcome, latency: Int64 = 10, now: Int64) {
        let p = b.allow(now: now)
        #expect(p.allowed == true)
        b.report(ticket: p.ticket!, outcome, latency: latency, now: now)
    }

    @Test func staysClosedBelowMinimumCalls() {
        var b = CircuitBreaker(policy: policy())
        for _ in 0..<3 { call(&b, .failure, now: 0) }
        #expect(b.state == .closed)
        call(&b, .failure, now: 0)
        #expect(b.state == .open)
    }

    @Test func tripsOnFailureRate() {
        var b = CircuitBreaker(policy: policy())
        call(&b, .success, now: 0); call(&b, .success, now: 0); call(&b, .success, now: 0)
        call(&b, .failure, now: 0); call(&b, .failure, now: 0)
        #expect(b.state == .closed)  // 2 of 5
        call(&b, .failure, now: 0)
        #expect(b.state == .open)  // 3 of 6
    }

    @Test func tripsOnSlowCallRate() {
        var b = CircuitBreaker(policy: policy())
        call(&b, .success, latency: 10, now: 0); call(&b, .success, latency: 10, now: 0)
        call(&b, .success, latency: 1001, now: 0)
        #expect(b.state == .closed)
        call(&b, .success, latency: 5000, now: 0)
        #expect(b.state == .open)
    }

    @Test func openRefusesWithExactWaitThenProbes() {
        var b = CircuitBreaker(policy: policy())
        for _ in 0..<4 { call(&b, .failure, now: 1000) }
        let refused = b.allow(now: 2500)
        #expect(!refused.allowed && refused.state == .open && refused.retryAfter == 3500 && refused.ticket == nil)
        let probe1 = b.allow(now: 6000)
        #expect(probe1.allowed && probe1.state == .halfOpen)
        let probe2 = b.allow(now: 6000)
        #expect(probe2.allowed)
        let third = b.allow(now: 6000)
        #expect(!third.allowed && third.state == .halfOpen)
        #expect(b.report(ticket: probe1.ticket!, .success, latency: 5, now: 6100) == true)
        #expect(b.state == .halfOpen)
        #expect(b.report(ticket: probe2.ticket!, .success, latency: 5, now: 6100) == true)
        #expect(b.state == .closed)
    }

    @Test func aFailedProbeReopens() {
        var b = CircuitBreaker(policy: policy())
        for _ in 0..<4 { call(&b, .failure, now: 0) }
        let probe = b.allow(now: 5000)
        b.report(ticket: probe.ticket!, .failure, latency: 1, now: 5001)
        #expect(b.state == .open)
        let again = b.allow(now: 5002)
        #expect(again.retryAfter == 4999)
    }

    @Test func lateReportsFromAnOlderGenerationAreIgnored() {
        var b = CircuitBreaker(policy: policy())
        let early = (0..<6).map { _ in b.allow(now: 0).ticket! }
        for t in early.prefix(4) { b.report(ticket: t, .failure, latency: 1, now: 0) }
        #expect(b.state == .open)
        // Successes of calls that started before the trip arrive late: ignored.
        #expect(b.report(ticket: early[4], .success, latency: 1, now: 10) == false)
        #expect(b.state == .open)
        let probe = b.allow(now: 5000)
        #expect(b.report(ticket: early[5], .success, latency: 1, now: 5001) == false)
        #expect(b.state == .halfOpen)
        #expect(b.report(ticket: probe.ticket!, .success, latency: 1, now: 5001) == true)
    }

    @Test func forcedStatesPinAndAutoResumes() {
        var b = CircuitBreaker(policy: policy())
        b.force(.open, now: 0)
        let pinned = b.allow(now: 1_000_000)
        #expect(!pinned.allowed)
        b.force(.closed, now: 0)
        for _ in 0..<10 { call(&b, .failure, now: 0) }
        let forcedClosed = b.allow(now: 0)
        #expect(forcedClosed.allowed)
        b.force(nil, now: 0)
        let snap = b.snapshot(now: 0)
        #expect(snap.state == .closed && snap.forced == nil)
        for _ in 0..<4 { call(&b, .failure, now: 0) }
        #expect(b.state == .open)
    }

    @Test func lostProbesAreReplacedAfterAWait() {
        var b = CircuitBreaker(policy: policy())
        for _ in 0..<4 { call(&b, .failure, now: 0) }
        _ = b.allow(now: 5000); _ = b.allow(now: 5000)
        let early = b.allow(now: 9999)
        #expect(!early.allowed)
        let later = b.allow(now: 10_000)
        #expect(later.allowed)
    }

    @Test func windowSlides() {
        var p = policy()
        p.window = 4
        var b = CircuitBreaker(policy: p)
        call(&b, .failure, now: 0)
        for _ in 0..<20 { call(&b, .success, now: 0) }
        call(&b, .failure, now: 0)
        #expect(b.state == .closed)  // only 1 failure among the last 4
        let window = b.snapshot(now: 0)
        #expect(window.calls == 4)
    }
}
