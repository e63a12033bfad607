import Histogram
import Logging
import NIOCore
import NIOPosix
import Testing
@testable import SluiceBackends
@testable import SluiceDomain
@testable import SluiceServer

/// The operating surface's parts without sockets: policy checks, the limited-keys sketch, the
/// metrics mirror's deltas, savings tags, breaker transitions.
@Suite("Operations: policies, metrics, tags, transitions")
struct OperationsTests {
    @Test func policiesAreCheckedWithTheCommandsBounds() {
        var p = PolicySet()
        #expect(p.problem() == nil)
        p.limits["gpt"] = LimitSpec(requestsPerMinute: 10, tokensPerMinute: 0)
        #expect(p.problem() == nil)
        p.limits["gpt"] = LimitSpec(requestsPerMinute: 10, tokensPerMinute: 0, requestBurst: 0)
        #expect(p.problem() == "limits.gpt.request_burst must be at least 1 when rpm is set")
        p.limits["gpt"] = LimitSpec(requestsPerMinute: 0, tokensPerMinute: 0)
        #expect(p.problem() == "limits.gpt: set rpm, tpm or both")
        p.limits = ["a b": LimitSpec(requestsPerMinute: 1, tokensPerMinute: 0)]
        #expect(p.problem()?.hasPrefix("policy name 'a b'") == true)
        p.limits = ["a\u{1}b": LimitSpec(requestsPerMinute: 1, tokensPerMinute: 0)]
        #expect(p.problem() != nil)
        p.limits = [:]
        p.budgets["b"] = .init(budget: Money(micros: 1), period: .rolling(milliseconds: Int64.max))
        #expect(p.problem() == "budgets.b.period_ms must be 1 to 10000000000")
        p.budgets["b"] = .init(budget: Money(micros: 1), near: .nan)
        #expect(p.problem() == "budgets.b.near must be above 0 and at most 1")
        p.budgets = [:]
        var change = BreakerPolicyChange()
        change.failureRate = 1.5
        p.breakers["openai"] = change
        #expect(p.problem() == "breakers.openai.failure_rate must be above 0 and at most 1")
    }

    @Test func limitedKeysKeepTheHeavyHittersInBoundedSpace() {
        var keys = LimitedKeys()
        for i in 0..<10_000 { keys.count("noise:\(i)") }   // each once
        for _ in 0..<500 { keys.count("tenant:a") }
        for _ in 0..<300 { keys.count("tenant:b") }
        #expect(keys.counts.count == LimitedKeys.capacity)
        let top = keys.top(2)
        #expect(top.map(\.key) == ["tenant:a", "tenant:b"])
        // Space-saving: over by at most the smallest count when the key took its slot.
        #expect(top[0].refused >= 500 && top[0].refused <= 500 + 10_000 / LimitedKeys.capacity + 1)
    }

    @Test func policyBookCountsDecisionsNearTheLimitAndTheMostRefused() {
        let book = PolicyBook()
        let spec = LimitSpec(requestsPerMinute: 10, tokensPerMinute: 0)
        let key = ByteBuffer(string: "k")
        book.count(policy: "p", key: key, allowed: true, remainingRequests: 9, remainingTokens: 0, spec: spec)
        book.count(policy: "p", key: key, allowed: true, remainingRequests: 2, remainingTokens: 0, spec: spec)  // 2 × 5 ≤ 10
        book.count(policy: "p", key: key, allowed: false, remainingRequests: 0, remainingTokens: 0, spec: spec)
        book.count(policy: nil, key: key, allowed: true, remainingRequests: 9, remainingTokens: 0, spec: spec)
        #expect(book.decisionCounts["p"] == PolicyBook.Decisions(allowed: 2, limited: 1, nearLimit: 1))
        #expect(book.decisionCounts["none"] == PolicyBook.Decisions(allowed: 1, limited: 0, nearLimit: 0))
        #expect(book.mostLimited(5).map(\.key) == ["k"])
        book.countSpend(policy: "team", key: key, allowed: true, near: true, amount: 8)
        #expect(book.decisionCounts["team"]?.nearLimit == 1)
        #expect(book.spentByPolicy["team"] == 8)
    }

    @Test func theMirrorMovesCountersByWhatTheirSourcesMoved() {
        let report = StatsReport.forTests()
        var m = MetricsExporter.Mirror(factory: MetricsExporter(report: report, policies: PolicyBook()).factory)
        m.counter("x_total", [], 5)
        m.counter("x_total", [], 5)
        m.counter("x_total", [], 7)
        #expect(m.last[MetricsExporter.Mirror.key("x_total", [])] == 7)
        // Two sources under one series: each moves it by its own delta.
        m.counterPart("y_total", [], part: "a", 3)
        m.counterPart("y_total", [], part: "b", 4)
        m.counterPart("y_total", [], part: "a", 3)
        m.counterPart("y_total", [], part: "b", 4)
        let first = m.delta("probe", 10), same = m.delta("probe", 10), back = m.delta("probe", 4)
        #expect(first == 10 && same == 0)
        #expect(back == 4)  // a source that went back counts from zero
        let own1 = m.ownLabel("n1", in: \.namespaceLabels, bound: 1)
        let own2 = m.ownLabel("n2", in: \.namespaceLabels, bound: 1)
        let again = m.ownLabel("n1", in: \.namespaceLabels, bound: 1)
        #expect(own1 && !own2 && again)
        // A name with a control character is "other" even with room to spare.
        let controls = ["a\r\nfake_metric 1", "nul\u{0}", "esc\u{1B}[31m", "c1\u{85}", "tab\t"]
        var owned = 0
        for name in controls where m.ownLabel(name, in: \.breakerLabels, bound: 100) { owned += 1 }
        let printable = m.ownLabel("checkout-api é", in: \.breakerLabels, bound: 100)
        #expect(owned == 0 && printable)
    }

    @Test func savingsTagsReserveTheirOwnNamesAndStayBounded() {
        let tags = SavingsTags()
        #expect(tags.id(for: "") == SavingsTags.none)
        #expect(tags.id(for: "none") == SavingsTags.none)
        #expect(tags.id(for: "other") == SavingsTags.other)
        #expect(tags.id(for: "bad tag") == SavingsTags.other)  // from a file, never from a client
        let a = tags.id(for: "gpt-4o")
        #expect(tags.id(for: "gpt-4o") == a && tags.name(of: a) == "gpt-4o" && tags.label(of: a) == "gpt-4o")
        for i in 0..<(SavingsTags.maxTags + 10) { _ = tags.id(for: "t\(i)") }
        #expect(tags.id(for: "one-more") == SavingsTags.other)
        #expect(tags.label(of: UInt16(SavingsTags.maxLabels)) == "other")
        #expect(tags.name(of: UInt16(SavingsTags.maxLabels)) != "other")  // kept by name past the label bound
    }

    @Test func breakerTransitionsAreSeenOnceEach() {
        let t = BreakerTransitions()
        #expect(t.observe("b", .closed, at: 1) == nil)
        #expect(t.observe("b", .open, at: 2) == .init(name: "b", from: .closed, to: .open))
        #expect(t.observe("b", .open, at: 3) == nil)
        #expect(t.observe("b", .halfOpen, at: 4)?.to == .halfOpen)
        // First seen already open: it opened where this instance did not see it.
        #expect(t.observe("c", .open, at: 5) == .init(name: "c", from: .closed, to: .open))
        #expect(t.snapshot["b"] == .init(state: .halfOpen, changedAt: 4, transitions: 2))
    }

    @Test func latencyWindowsHandBackWhatWasRecordedAndStartAgain() {
        let w = LatencyWindow()
        for us in [10, 20, 30, 1000] as [UInt64] { w.record(nanoseconds: us * 1000) }
        w.record(nanoseconds: UInt64.max)  // clamped, not trapped
        let taken = w.take()
        #expect(taken.totalCount == 5)
        #expect(taken.valueAtPercentile(50) >= 19 && taken.valueAtPercentile(50) <= 31)
        #expect(w.take().totalCount == 0)
    }
}

extension StatsReport {
    /// A report over embedded capabilities with nothing in them.
    static func forTests() -> StatsReport {
        let keyspace = Keyspace(l1Capacity: 1 << 20, shardCount: 1, tracksL2: false)
        return StatsReport(cache: EmbeddedExactCache(keyspace: keyspace, store: nil),
                           limits: EmbeddedRateLimits(limiter: RateLimiter(maxKeys: 100, reservationTTL: 1000)),
                           breakers: EmbeddedBreakers(registry: BreakerRegistry(maxBreakers: 10)),
                           semantic: EmbeddedSemanticStore(cache: SemanticCache(), store: nil, lanes: Harness.lanes, offloadEntries: 10),
                           counters: ServerCounters(), configuration: ServerConfiguration(), startedAt: 0)
    }
}
