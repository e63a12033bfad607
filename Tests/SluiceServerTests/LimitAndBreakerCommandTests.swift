import NIOCore
import SluiceDomain
import Testing
@testable import SluiceServer

@Suite("RL.* and CB.* over the wire")
struct LimitAndBreakerCommandTests {
    @Test func takeReportsBothBudgetsAndExactTimes() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("RL.TAKE user:1 2 100 TOKENS 40\r\n") == "*5\r\n:1\r\n:1\r\n:60\r\n:0\r\n:30000\r\n")
        #expect(try await h.send("RL.TAKE user:1 2 100 TOKENS 40\r\n") == "*5\r\n:1\r\n:0\r\n:20\r\n:0\r\n:60000\r\n")
        // Out of requests: 30 s until the next one; nothing charged.
        #expect(try await h.send("RL.TAKE user:1 2 100 TOKENS 1\r\n") == "*5\r\n:0\r\n:0\r\n:20\r\n:30000\r\n:60000\r\n")
        h.clock.advance(30_000)
        #expect(try await h.send("RL.PEEK user:1\r\n") == "*6\r\n:1\r\n:70\r\n:0\r\n:30000\r\n:2\r\n:100\r\n")
        #expect(try await h.send("RL.PEEK nobody\r\n") == "*-1\r\n")
        await h.close()
    }

    /// An NTP step of the wall clock by an hour: buckets do not refill, an open breaker stays
    /// open, a lease is still held — intervals run on the monotonic clock. Expiry of stored
    /// entries, which is persisted, follows the wall clock.
    @Test func aWallClockStepMovesExpiryButNoInterval() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("RL.TAKE k 1 0\r\n").hasPrefix("*5\r\n:1\r\n"))
        #expect(try await h.send("RL.TAKE k 1 0\r\n") == "*5\r\n:0\r\n:0\r\n:-1\r\n:60000\r\n:60000\r\n")
        _ = try await h.send("CB.CONFIG up MIN-CALLS 1 OPEN-MS 5000\r\n")
        let ticket = try await h.send("CB.ALLOW up\r\n").split(separator: "\r\n")[5]
        #expect(try await h.send("CB.REPORT up \(ticket) fail\r\n") == "*2\r\n:1\r\n$4\r\nopen\r\n")
        #expect(try await h.send("CACHE.GET q LEASE 5000\r\n").hasPrefix("*4\r\n$-1\r\n$-1\r\n$-1\r\n$"))
        #expect(try await h.send("SET shortlived v EX 10\r\n") == "+OK\r\n")

        h.clock.stepWallClock(3_600_000)

        #expect(try await h.send("RL.TAKE k 1 0\r\n") == "*5\r\n:0\r\n:0\r\n:-1\r\n:60000\r\n:60000\r\n")
        #expect(try await h.send("CB.ALLOW up\r\n") == "*4\r\n:0\r\n$4\r\nopen\r\n$-1\r\n:5000\r\n")
        #expect(try await h.send("CACHE.GET q LEASE 5000\r\n") == "*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n")
        #expect(try await h.send("GET shortlived\r\n") == "$-1\r\n")
        await h.close()
    }

    /// Settlements far above their (zero) estimates: the debt stops at its floor (see
    /// `TokenBucketTests.debtStopsAtTheFloor`, which would trap without it) and the bucket
    /// stays usable.
    @Test func debtFromHugeSettlementsStopsAtItsFloor() async throws {
        let h = try await Harness.make()
        var ids: [Substring] = []
        for _ in 0..<200 {
            let reply = try await h.send("RL.RESERVE d 1000000 10000000000 0\r\n")
            #expect(reply.hasPrefix("*3\r\n:1\r\n"))
            ids.append(reply.split(separator: "\r\n")[3])
        }
        for id in ids {
            #expect(try await h.send("RL.SETTLE \(id) 10000000000\r\n") == "*2\r\n:10000000000\r\n:0\r\n")
        }
        let denied = try await h.send("RL.TAKE d 1000000 10000000000 TOKENS 1\r\n")
        #expect(denied.hasPrefix("*5\r\n:0\r\n"))
        await h.close()
    }

    @Test func reserveAndSettle() async throws {
        let h = try await Harness.make()
        let reply = try await h.send("RL.RESERVE t 100 1000 800\r\n")
        #expect(reply.hasPrefix("*3\r\n:1\r\n$") && reply.hasSuffix(":0\r\n"))
        let id = reply.split(separator: "\r\n")[3]
        #expect(try await h.send("RL.RESERVE t 100 1000 800\r\n") == "*3\r\n:0\r\n$-1\r\n:36000\r\n")
        #expect(try await h.send("RL.SETTLE \(id) 300\r\n") == "*2\r\n:-500\r\n:700\r\n")
        #expect(try await h.send("RL.SETTLE \(id) 300\r\n") == "-ERR unknown or expired reservation\r\n")
        await h.close()
    }

    /// Over the wire, with the harness's clock: a penalty holds, a sync aligns.
    @Test func penalizeAndSync() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("RL.TAKE p 60 6000 TOKENS 100\r\n") == "*5\r\n:1\r\n:59\r\n:5900\r\n:0\r\n:1000\r\n")
        #expect(try await h.send("RL.PENALIZE p 2000\r\n") == "*4\r\n:0\r\n:0\r\n:3000\r\n:62000\r\n")
        h.clock.advance(2_500)
        #expect(try await h.send("RL.TAKE p 60 6000\r\n") == "*5\r\n:0\r\n:0\r\n:50\r\n:500\r\n:59500\r\n")
        #expect(try await h.send("RL.SYNC p 10 -1 0\r\n") == "*4\r\n:10\r\n:50\r\n:0\r\n:59500\r\n")
        #expect(try await h.send("RL.SYNC q 3 0 1500 60 6000\r\n") == "*4\r\n:3\r\n:0\r\n:1500\r\n:61500\r\n")
        await h.close()
    }

    @Test func slotsAndBudgets() async throws {
        let h = try await Harness.make()
        let a = try await h.send("RL.ACQUIRE pool 1 TTL 5000\r\n")
        #expect(a.hasPrefix("*4\r\n:1\r\n$") && a.hasSuffix(":0\r\n:0\r\n"))
        let slot = a.split(separator: "\r\n")[3]
        h.clock.advance(1000)
        #expect(try await h.send("RL.ACQUIRE pool 1\r\n") == "*4\r\n:0\r\n$-1\r\n:1\r\n:4000\r\n")
        #expect(try await h.send("RL.RELEASE pool \(slot)\r\nRL.RELEASE pool \(slot)\r\n") == ":1\r\n:0\r\n")
        #expect(try await h.send("RL.SPEND team 2.5 10 PERIOD 3600000\r\n") == "*4\r\n:1\r\n$3\r\n7.5\r\n:3600000\r\n:0\r\n")
        #expect(try await h.send("RL.SPEND team 8 10 PERIOD 3600000\r\n") == "*4\r\n:0\r\n$3\r\n7.5\r\n:3600000\r\n:0\r\n")
        // The newer form, and the near-budget signal from NEAR of the budget on.
        #expect(try await h.send("RL.SPEND team 5 BUDGET 10 PERIOD 3600000 NEAR 0.7\r\n") == "*4\r\n:1\r\n$3\r\n2.5\r\n:3600000\r\n:1\r\n")
        #expect(try await h.send("RL.BUDGET team\r\n") == "*6\r\n$3\r\n7.5\r\n$4\r\n10.0\r\n$3\r\n2.5\r\n:3600000\r\n$7\r\n3600000\r\n:1\r\n")
        #expect(try await h.send("RL.BUDGET nobody\r\n") == "*-1\r\n")
        // A calendar day: the window ends at the next midnight UTC (the harness's clock is at
        // 1,700,000,000,000 ms: 2023-11-14 22:13:20 UTC, 6,400 s before midnight, and was moved 1 s).
        #expect(try await h.send("RL.SPEND daily 1 BUDGET 3 PERIOD day\r\n") == "*4\r\n:1\r\n$3\r\n2.0\r\n:6399000\r\n:0\r\n")
        await h.close()
    }

    @Test(arguments: [
        ("RL.ACQUIRE k 0\r\n", "-ERR limit must be 1 to 100000\r\n"),
        ("RL.PENALIZE k -1\r\n", "-ERR retry_after_ms must be 0 to 86400000\r\n"),
        ("RL.PENALIZE k 86400001\r\n", "-ERR retry_after_ms must be 0 to 86400000\r\n"),
        ("RL.PENALIZE k 1 2\r\n", "-ERR wrong number of arguments for 'rl.penalize' command\r\n"),
        ("RL.SYNC k -2 0 0\r\n", "-ERR remaining_requests must be -1 (not reported) or 0 to 10000000000\r\n"),
        ("RL.SYNC k 0 10000000001 0\r\n", "-ERR remaining_tokens must be -1 (not reported) or 0 to 10000000000\r\n"),
        ("RL.SYNC k 0 0 86400001\r\n", "-ERR reset_ms must be 0 to 86400000\r\n"),
        ("RL.SYNC k 0 0 0 60\r\n", "-ERR syntax error\r\n"),
        ("RL.SYNC k 0 0 0 POLICY nope\r\n", "-ERR no rate-limit policy named 'nope' (policies come from the --config file)\r\n"),
        ("RL.SYNC k 1 1 1\r\n", "*-1\r\n"),
        ("RL.SYNC k 5 5 100 1 1 BURST 0 0\r\n", "-ERR asking for 1 but the bucket holds at most 0: it can never be allowed\r\n"),
        ("RL.ACQUIRE k 2 TTL 0\r\n", "-ERR LEASE must be 1 to 86400000 ms\r\n"),
        ("RL.ACQUIRE k 2 LEASE 86400001\r\n", "-ERR LEASE must be 1 to 86400000 ms\r\n"),
        ("RL.ACQUIRE k 2 WAIT -1\r\n", "-ERR WAIT must be 0 to 86400000 ms\r\n"),
        ("RL.ACQUIRE k 2 WAIT 86400001\r\n", "-ERR WAIT must be 0 to 86400000 ms\r\n"),
        ("RL.ACQUIRE k 2 PRIORITY 1000001\r\n", "-ERR PRIORITY must be an integer from -1000000 to 1000000\r\n"),
        ("RL.ACQUIRE k 2 PRIORITY high\r\n", "-ERR PRIORITY must be an integer from -1000000 to 1000000\r\n"),
        ("RL.ACQUIRE k 2 WAIT\r\n", "-ERR wrong number of arguments for 'rl.acquire' command\r\n"),
        ("RL.ACQUIRE k 2 SOON 5\r\n", "-ERR syntax error\r\n"),
        ("RL.SPEND k -1 10\r\n", "-ERR amount must be a non-negative number of at most 1e12\r\n"),
        ("RL.SPEND k 1 lots\r\n", "-ERR budget must be a non-negative number of at most 1e12\r\n"),
        ("RL.SPEND k 1 10 PERIOD 0\r\n", "-ERR PERIOD must be day, week, month or 1 to 10000000000 ms\r\n"),
        ("RL.SPEND k 1 10 PERIOD fortnight\r\n", "-ERR PERIOD must be day, week, month or 1 to 10000000000 ms\r\n"),
        ("RL.SPEND k 1 10 NEAR 0\r\n", "-ERR NEAR must be above 0 and at most 1\r\n"),
        ("RL.SPEND k 1\r\n", "-ERR a budget is needed: RL.SPEND key amount budget, BUDGET b or POLICY name\r\n"),
        ("RL.SPEND k 1 BUDGET 1e13\r\n", "-ERR budget must be a non-negative number of at most 1e12\r\n"),
        ("RL.TAKE k x 1\r\n", "-ERR value is not an integer or out of range\r\n"),
        ("RL.TAKE k -1 1\r\n", "-ERR rpm must be between 0 and 10000000000\r\n"),
        ("RL.TAKE k 1 1 TOKENS\r\n", "-ERR syntax error\r\n"),
        ("RL.TAKE k 1 10 TOKENS 11\r\n", "-ERR asking for 11 but the bucket holds at most 10: it can never be allowed\r\n"),
        ("RL.TAKE k 1 1 BURST 5\r\n", "-ERR syntax error\r\n"),
        ("RL.TAKE k 1 1 NOPE 1\r\n", "-ERR syntax error\r\n"),
        ("RL.TAKE k 1\r\n", "-ERR wrong number of arguments for 'rl.take' command\r\n"),
        ("RL.RESERVE k 1 1\r\n", "-ERR wrong number of arguments for 'rl.reserve' command\r\n"),
        ("RL.SETTLE abc 1\r\n", "-ERR unknown or expired reservation\r\n"),
        ("RL.SETTLE 12 -4\r\n", "-ERR actual must be between 0 and 10000000000\r\n"),
        ("CB.REPORT up 1 maybe\r\n", "-ERR outcome must be ok or fail\r\n"),
        ("CB.REPORT up x ok\r\n", "-ERR ticket is not valid\r\n"),
        ("CB.REPORT up 1 ok -3\r\n", "-ERR latency_ms must not be negative\r\n"),
        ("CB.FORCE up sideways\r\n", "-ERR CB.FORCE takes open, closed or auto\r\n"),
        ("CB.CONFIG up WINDOW 0\r\n", "-ERR WINDOW must be 1 to 10000\r\n"),
        ("CB.CONFIG b OPEN-MS 9223372036854775807 MIN-CALLS 1\r\n", "-ERR OPEN-MS must be 1 to 604800000 ms\r\n"),
        ("RL.SPEND k 1e300 1e300\r\n", "-ERR amount must be a non-negative number of at most 1e12\r\n"),
        ("RL.TAKE k 9223372036854775807 1\r\n", "-ERR rpm must be between 0 and 10000000000\r\n"),
        ("CB.CONFIG up FAILURE-RATE 1.5\r\n", "-ERR FAILURE-RATE must be above 0 and at most 1\r\n"),
        ("CB.CONFIG up OPEN-MS\r\n", "-ERR syntax error\r\n"),
    ])
    func errors(request: String, reply: String) async throws {
        let h = try await Harness.make()
        #expect(try await h.send(request + "PING\r\n") == reply + "+PONG\r\n")
        await h.close()
    }

    @Test func breakerTripsProbesAndIgnoresStaleTickets() async throws {
        let h = try await Harness.make()
        let config = try await h.send("CB.CONFIG llm MIN-CALLS 2 WINDOW 4 OPEN-MS 1000 PROBES 1\r\n")
        #expect(config.hasPrefix("*14\r\n$6\r\nwindow\r\n:4\r\n$9\r\nmin_calls\r\n:2\r\n"))
        func ticket(_ reply: String) -> String { String(reply.split(separator: "\r\n")[5]) }
        let a = try await h.send("CB.ALLOW llm\r\n"), b = try await h.send("CB.ALLOW llm\r\n"), c = try await h.send("CB.ALLOW llm\r\n")
        #expect(a.hasPrefix("*4\r\n:1\r\n$6\r\nclosed\r\n$"))
        #expect(try await h.send("CB.REPORT llm \(ticket(a)) fail 20\r\n") == "*2\r\n:1\r\n$6\r\nclosed\r\n")
        #expect(try await h.send("CB.REPORT llm \(ticket(b)) fail\r\n") == "*2\r\n:1\r\n$4\r\nopen\r\n")
        #expect(try await h.send("CB.REPORT llm \(ticket(c)) ok\r\n") == "*2\r\n:0\r\n$4\r\nopen\r\n")
        h.clock.advance(400)
        #expect(try await h.send("CB.ALLOW llm\r\n") == "*4\r\n:0\r\n$4\r\nopen\r\n$-1\r\n:600\r\n")
        h.clock.advance(600)
        let probe = try await h.send("CB.ALLOW llm\r\n")
        #expect(probe.hasPrefix("*4\r\n:1\r\n$9\r\nhalf_open\r\n"))
        #expect(try await h.send("CB.REPORT llm \(ticket(probe)) ok 5\r\n") == "*2\r\n:1\r\n$6\r\nclosed\r\n")
        let state = try await h.send("CB.STATE llm\r\n")
        #expect(state.hasPrefix("*16\r\n$5\r\nstate\r\n$6\r\nclosed\r\n$6\r\nforced\r\n$-1\r\n"))
        #expect(try await h.send("CB.FORCE llm open\r\nCB.ALLOW llm\r\n") == "+OK\r\n*4\r\n:0\r\n$4\r\nopen\r\n$-1\r\n:-1\r\n")
        let stats = try await h.send("STATS\r\n")
        #expect(stats.contains("$11\r\ncb_breakers\r\n:1\r\n$7\r\ncb_open\r\n:1\r\n"))
        await h.close()
    }

    /// Shadow mode: decided and counted as usual, always allowed — by request (DRYRUN) or by a
    /// policy of the config file (`dryrun = true`).
    @Test func dryRunDecidesCountsAndAllows() async throws {
        let h = try await Harness.make { config in
            config.policies.limits["shadow"] = LimitSpec(requestsPerMinute: 1, tokensPerMinute: 0)
            config.policies.budgets["trial"] = .init(budget: Money(micros: 1_000_000))
            config.policies.dryRun = ["limits.shadow", "budgets.trial"]
        }
        #expect(try await h.send("RL.TAKE k 1 0\r\n").hasPrefix("*5\r\n:1\r\n"))
        #expect(try await h.send("RL.TAKE k 1 0\r\n").hasPrefix("*5\r\n:0\r\n"))  // enforced
        let shadow = try await h.send("RL.TAKE k 1 0 DRYRUN\r\n")
        #expect(shadow == "*5\r\n:1\r\n:0\r\n:-1\r\n:60000\r\n:60000\r\n")  // allowed, and says when enforcement would
        #expect(try await h.send("RL.TAKE p POLICY shadow\r\nRL.TAKE p POLICY shadow\r\n").components(separatedBy: "*5\r\n:1\r\n").count == 3)
        #expect(try await h.send("RL.SPEND b 1 BUDGET 1\r\nRL.SPEND b 1 BUDGET 1 DRYRUN\r\n")
                == "*4\r\n:1\r\n$3\r\n0.0\r\n:6400000\r\n:1\r\n*4\r\n:1\r\n$3\r\n0.0\r\n:6400000\r\n:1\r\n")
        #expect(try await h.send("RL.SPEND t 2 POLICY trial\r\n").hasPrefix("*4\r\n:1\r\n$3\r\n1.0\r\n"))  // over, allowed, not charged
        await h.close()
    }

    @Test func slotLimitsAndLifetimesAreBounded() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("RL.ACQUIRE k 100001\r\n") == "-ERR limit must be 1 to 100000\r\n")
        #expect(try await h.send("RL.ACQUIRE k 10 TTL 86400001\r\n") == "-ERR LEASE must be 1 to 86400000 ms\r\n")
        #expect(try await h.send("RL.ACQUIRE k 10 TTL 86400000\r\n").hasPrefix("*4\r\n:1\r\n"))
        await h.close()
    }

    @Test func numbersAreDecimalAndNamesAreBounded() async throws {
        let h = try await Harness.make()
        for bad in ["0x10", "+5", "inf", "nan", "1e400"] {
            #expect(try await h.send("RL.SPEND k \(bad) 10 1000\r\n") == "-ERR amount must be a non-negative number of at most 1e12\r\n")
        }
        let long = String(repeating: "k", count: 1025)
        #expect(try await h.send("RL.TAKE \(long) 10 0\r\n") == "-ERR key is longer than 1024 bytes\r\n")
        #expect(try await h.send("CB.ALLOW \(long)\r\n") == "-ERR breaker name is longer than 1024 bytes\r\n")
        #expect(try await h.send("SEM.INFO \(long)\r\n") == "-ERR namespace is longer than 1024 bytes\r\n")
        #expect(try await h.send("CLIENT SETNAME \"a b\"\r\n") == "-ERR Client names cannot contain spaces, newlines or special characters.\r\n")
        #expect(try await h.send("CLIENT SETNAME worker-1\r\n") == "+OK\r\n")
        await h.close()
    }
}
