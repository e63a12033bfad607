import NIOCore
import Testing
@testable import SluiceDomain

@Suite("Token bucket")
struct TokenBucketTests {
    @Test func refillIsContinuousAndExact() {
        var b = TokenBucket(perMinute: 60, capacity: 60, now: 0)  // one token per second
        b.charge(60)
        #expect(b.remaining == 0)
        #expect(b.wait(for: 1) == 1000)
        #expect(b.untilFull == 60_000)
        b.refill(now: 999)
        #expect(b.remaining == 0 && b.wait(for: 1) == 1)
        b.refill(now: 1000)
        #expect(b.remaining == 1 && b.wait(for: 1) == 0)
        #expect(b.wait(for: 3) == 2000)
        b.refill(now: 10_000_000_000)  // a long idle time neither overflows nor overfills
        #expect(b.remaining == 60 && b.untilFull == 0)
    }

    @Test func oddRatesRoundRetryUp() {
        var b = TokenBucket(perMinute: 7, capacity: 7, now: 0)
        b.charge(7)
        // 60000/7 = 8571.43 ms per token: wait 8572 ms, and after exactly that one is there.
        #expect(b.wait(for: 1) == 8572)
        b.refill(now: 8571)
        #expect(b.remaining == 0)
        b.refill(now: 8572)
        #expect(b.remaining == 1)
    }

    @Test func debtDelaysUntilRepaid() {
        var b = TokenBucket(perMinute: 600, capacity: 600, now: 0)  // 10 per second
        b.charge(650)  // 50 into debt
        #expect(b.remaining == 0)
        #expect(b.wait(for: 1) == 5100)  // repay 50, then earn 1: 51 tokens at 10/s
        b.refill(now: 5099)
        #expect(b.wait(for: 1) == 1)
    }

    /// More debt than Int64 holds, one largest charge at a time: it stops at the floor (it
    /// used to overflow and trap after about 140 settlements of 2⁴⁰ tokens).
    @Test func debtStopsAtTheFloor() {
        var b = TokenBucket(perMinute: TokenBucket.maxTokens, capacity: TokenBucket.maxTokens, now: 0)
        for _ in 0..<20_000 { b.charge(TokenBucket.maxTokens) }
        #expect(b.level == TokenBucket.floorUnits && b.remaining == 0)
        b.refill(now: 2)
        #expect(b.wait(for: 1) > 0)
        b.refund(TokenBucket.maxTokens)
        #expect(b.level == TokenBucket.floorUnits + 2 * TokenBucket.maxTokens + TokenBucket.maxTokens * TokenBucket.unit)  // 2 ms of refill, then the refund
    }

    @Test func reconfigureKeepsLevelCappedAtNewCapacity() {
        var b = TokenBucket(perMinute: 100, capacity: 100, now: 0)
        b.charge(10)
        b.reconfigure(perMinute: 50, capacity: 50)
        #expect(b.remaining == 50)
        b.reconfigure(perMinute: 1000, capacity: 1000)
        #expect(b.remaining == 50)
    }
}

@Suite("Rate limiter shard")
struct RateLimiterShardTests {
    let key = ByteBuffer(string: "tenant:1")

    @Test func bothBudgetsAreChargedTogetherOrNotAtAll() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let spec = LimitSpec(requestsPerMinute: 10, tokensPerMinute: 100)
        let first = try s.take(key, spec: spec, tokens: 60, now: 0).get()
        #expect(first == LimitDecision(allowed: true, remainingRequests: 9, remainingTokens: 40, retryAfter: 0, reset: 36_000))
        // 60 more tokens do not fit: denied, and the request budget is not charged either.
        let second = try s.take(key, spec: spec, tokens: 60, now: 0).get()
        #expect(!second.allowed)
        #expect(second.remainingRequests == 9 && second.remainingTokens == 40)
        #expect(second.retryAfter == 12_000)  // 20 tokens at 100/min
        // Out of requests while tokens remain: the request budget decides.
        for _ in 0..<9 { #expect(try s.take(key, spec: spec, tokens: 0, now: 0).get().allowed) }
        let out = try s.take(key, spec: spec, tokens: 0, now: 0).get()
        #expect(!out.allowed && out.retryAfter == 6000 && out.remainingTokens == 40)
    }

    @Test func zeroMeansUnlimitedAndOversizedAsksAreErrors() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let d = try s.take(key, spec: LimitSpec(requestsPerMinute: 0, tokensPerMinute: 1000), tokens: 10, now: 0).get()
        #expect(d.allowed && d.remainingRequests == -1 && d.remainingTokens == 990)
        #expect(throws: LimitError.exceedsBurst(asked: 2000, burst: 1000)) {
            try s.take(key, spec: LimitSpec(requestsPerMinute: 0, tokensPerMinute: 1000), tokens: 2000, now: 0).get()
        }
    }

    @Test func burstIsTheBucketSize() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let spec = LimitSpec(requestsPerMinute: 60, tokensPerMinute: 0, requestBurst: 5, tokenBurst: 0)
        var allowed = 0
        for _ in 0..<10 where try s.take(key, spec: spec, tokens: 0, now: 0).get().allowed { allowed += 1 }
        #expect(allowed == 5)
        #expect(try s.take(key, spec: spec, tokens: 0, now: 1000).get().allowed)
    }

    @Test func settleRefundsOrChargesAndDebtIsNeverForgiven() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let spec = LimitSpec(requestsPerMinute: 100, tokensPerMinute: 1000)
        #expect(try s.reserve(key, spec: spec, estimate: 500, id: 1, expiresAt: 60_000, now: 0).get().allowed)
        let refund = try s.settle(id: 1, actual: 200, now: 0).get()
        #expect(refund.delta == -300 && refund.remainingTokens == 800)
        #expect(try s.reserve(key, spec: spec, estimate: 800, id: 2, expiresAt: 60_000, now: 0).get().allowed)
        let charge = try s.settle(id: 2, actual: 1300, now: 0).get()  // 500 more than reserved: 500 in debt
        #expect(charge.delta == 500 && charge.remainingTokens == 0)
        let next = try s.take(key, spec: spec, tokens: 1, now: 0).get()
        #expect(!next.allowed && next.retryAfter == 30_060)  // 501 tokens at 1000/min
        #expect(throws: LimitError.unknownReservation) { try s.settle(id: 2, actual: 0, now: 0).get() }
    }

    @Test func unsettledReservationExpiresStillCharged() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let spec = LimitSpec(requestsPerMinute: 100, tokensPerMinute: 1000)
        _ = try s.reserve(key, spec: spec, estimate: 900, id: 7, expiresAt: 1000, now: 0).get()
        s.sweep(now: 1000)
        #expect(s.reservations.isEmpty && s.counters.reservationsExpired == 1)
        #expect(throws: LimitError.unknownReservation) { try s.settle(id: 7, actual: 10, now: 1000).get() }
        let peeked = s.peek(key, now: 1000)
        #expect(peeked?.0.remainingTokens == 116)  // 100 + 16 refilled in 1 s, not refunded
    }

    @Test func idleFullBucketsAreReclaimedAndKeysBounded() throws {
        var s = RateLimiterShard(maxKeys: 2)
        let spec = LimitSpec(requestsPerMinute: 60, tokensPerMinute: 0)
        _ = try s.take(ByteBuffer(string: "a"), spec: spec, tokens: 0, now: 0).get()
        _ = try s.reserve(ByteBuffer(string: "b"), spec: spec, estimate: 0, id: 9, expiresAt: 600_000, now: 0).get()
        #expect(throws: LimitError.tooManyKeys(limit: 2)) { try s.take(ByteBuffer(string: "c"), spec: spec, tokens: 0, now: 0).get() }
        s.sweep(now: 1000)  // "a" is full again; "b" has an open reservation
        #expect(s.limits.count == 1 && s.counters.keysReclaimed == 1)
        #expect(try s.take(ByteBuffer(string: "c"), spec: spec, tokens: 0, now: 1000).get().allowed)
    }

    @Test func peekChargesNothing() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(s.peek(key, now: 0).map { $0.0 } == nil)
        let spec = LimitSpec(requestsPerMinute: 10, tokensPerMinute: 100)
        _ = try s.take(key, spec: spec, tokens: 5, now: 0).get()
        for _ in 0..<3 {
            let peeked = s.peek(key, now: 0)
            #expect(peeked?.0.remainingRequests == 9)
        }
    }
}

@Suite("Rate limiter registry")
struct RateLimiterRegistryTests {
    @Test func fiftyConcurrentTakersGetExactlyTheCapacity() async {
        let limiter = RateLimiter()
        let spec = LimitSpec(requestsPerMinute: 1, tokensPerMinute: 0, requestBurst: 100, tokenBurst: 0)
        let allowed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    var n = 0
                    for _ in 0..<10 where (try? limiter.take(ByteBuffer(string: "one-key"), spec: spec, tokens: 0, now: 0).get())?.allowed == true {
                        n += 1
                    }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 100)
    }

    @Test func reservationIdsFindTheirShard() throws {
        let limiter = RateLimiter()
        let spec = LimitSpec(requestsPerMinute: 100, tokensPerMinute: 1000)
        for i in 0..<50 {
            let (result, id) = limiter.reserve(ByteBuffer(string: "k\(i)"), spec: spec, estimate: 100, now: 0)
            #expect(try result.get().allowed)
            #expect(try limiter.settle(id: id, actual: 40, now: 1).get().delta == -60)
        }
    }
}
