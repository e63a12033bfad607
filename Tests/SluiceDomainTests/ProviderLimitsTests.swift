import NIOCore
import Testing
@testable import SluiceDomain

/// RL.PENALIZE and RL.SYNC on the shard, with time passed by hand.
@Suite("Limits that follow the provider: penalize and sync")
struct ProviderLimitsTests {
    let key = ByteBuffer(string: "openai:gpt-4o")
    /// 60 requests a minute (one a second), 6,000 tokens a minute (100 a second).
    let spec = LimitSpec(requestsPerMinute: 60, tokensPerMinute: 6_000)

    @Test func aPenaltyEmptiesAndHoldsAndNothingFlowsInMeanwhile() throws {
        var s = RateLimiterShard(maxKeys: 10)
        for _ in 0..<10 { #expect(try s.take(key, spec: spec, tokens: 10, now: 0).get().allowed) }
        let p = try s.penalize(key, for: 5_000, now: 1_000).get()
        // Held 5 s, then a request needs a second of refill from empty.
        #expect(p == LimitDecision(allowed: false, remainingRequests: 0, remainingTokens: 0, retryAfter: 6_000, reset: 5_000 + 60_000))
        let during = try s.take(key, spec: spec, tokens: 0, now: 5_999).get()
        #expect(!during.allowed && during.retryAfter == 1_001)
        // At the end of the hold the bucket is as empty as it was: no burst.
        let atEnd = try s.take(key, spec: spec, tokens: 0, now: 6_000).get()
        #expect(!atEnd.allowed && atEnd.retryAfter == 1_000 && atEnd.remainingTokens == 0)
        #expect(try s.take(key, spec: spec, tokens: 100, now: 7_000).get().allowed)
        #expect(try !s.take(key, spec: spec, tokens: 0, now: 7_000).get().allowed)
    }

    @Test func aShorterPenaltyNeverCutsALongerOneAndDebtStays() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(try s.take(key, spec: spec, tokens: 6_000, now: 0).get().allowed)
        _ = try s.penalize(key, for: 10_000, now: 0).get()
        let shorter = try s.penalize(key, for: 1_000, now: 2_000).get()
        #expect(shorter.retryAfter == 8_000 + 1_000)
        // A settled overrun left debt: emptying keeps it (the tokens are owed either way).
        var t = RateLimiterShard(maxKeys: 10)
        let (r, id) = (try t.reserve(key, spec: spec, estimate: 100, id: 7, expiresAt: 60_000, now: 0).get(), 7 as UInt64)
        #expect(r.allowed)
        _ = try t.settle(id: id, actual: 12_000, now: 0).get()  // 6,000 tokens of debt
        let held = try t.penalize(key, for: 1_000, now: 0).get()
        // After the hold: a minute to pay back the debt (a request needs only a second), two to
        // be full again.
        #expect(held.retryAfter == 1_000 + 60_000 && held.reset == 1_000 + 120_000)
    }

    @Test func aKeyWithNoBucketIsHeldAndStartsEmpty() throws {
        var s = RateLimiterShard(maxKeys: 10)
        let p = try s.penalize(key, for: 2_000, now: 0).get()
        #expect(p == LimitDecision(allowed: false, remainingRequests: -1, remainingTokens: -1, retryAfter: 2_000, reset: 2_000))
        s.sweep(now: 1_000)
        #expect(s.limits[key] != nil, "a held bucket is not reclaimed")
        #expect(s.peek(key, now: 1_999)?.0.allowed == false)
        // Swept after the hold, it is still there, so the first take sizes it empty: a second
        // of refill for one request, not a full bucket.
        s.sweep(now: 2_500)
        let after = try s.take(key, spec: spec, tokens: 0, now: 2_500).get()
        #expect(!after.allowed && after.retryAfter == 1_000)
        s.sweep(now: 1_000_000)
        #expect(s.limits[key] == nil)
    }

    @Test func syncSetsWhatTheProviderCountsAndHoldsAtZero() throws {
        var s = RateLimiterShard(maxKeys: 10)
        #expect(try s.sync(key, remainingRequests: 5, remainingTokens: nil, reset: 0, spec: nil, now: 0).get() == nil,
                "no bucket and no limits: nothing to align")
        #expect(try s.take(key, spec: spec, tokens: 10, now: 0).get().remainingRequests == 59)
        let five = try #require(try s.sync(key, remainingRequests: 5, remainingTokens: nil, reset: 30_000, spec: nil, now: 0).get())
        #expect(five.remainingRequests == 5 && five.remainingTokens == 5_990 && five.allowed)
        // Above the bucket's size: capped. The provider may also forgive our debt.
        let big = try #require(try s.sync(key, remainingRequests: 1_000, remainingTokens: 10_000, reset: 0, spec: nil, now: 0).get())
        #expect(big.remainingRequests == 60 && big.remainingTokens == 6_000 && big.reset == 0)
        // Zero left: nothing until the provider's window resets, then refill from zero.
        let zero = try #require(try s.sync(key, remainingRequests: 0, remainingTokens: 4_000, reset: 3_000, spec: nil, now: 1_000).get())
        #expect(!zero.allowed && zero.retryAfter == 3_000 + 1_000 && zero.remainingTokens == 4_000)
        #expect(try !s.take(key, spec: spec, tokens: 1, now: 3_999).get().allowed)
        #expect(try s.take(key, spec: spec, tokens: 1, now: 5_000).get().allowed)
        // With limits a reclaimed key is made again, full, then aligned.
        var t = RateLimiterShard(maxKeys: 10)
        let made = try #require(try t.sync(key, remainingRequests: nil, remainingTokens: 100, reset: 0, spec: spec, now: 0).get())
        #expect(made.remainingRequests == 60 && made.remainingTokens == 100)
    }
}
