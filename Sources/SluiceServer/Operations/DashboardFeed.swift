import DequeModule
import Foundation
import Histogram
import SluiceBackends
import SluiceDomain
import Synchronization

/// What the dashboard draws: once a second a sample of the last second (ops/s, hit rate per
/// layer, p50/p95/p99), the last ``historySeconds`` of them kept; and, when the page asks
/// (`/dashboard.json`), the current totals, savings by tag today and in all, budgets, the most
/// limited keys, breakers and backends.
///
/// "Today" counts from UTC midnight, or from the start of the process if it started later
/// (counters are not persisted).
public final class DashboardFeed: Sendable {
    public static let historySeconds = 300

    public struct Sample: Sendable {
        /// Wall-clock ms at the end of the second.
        var at: Int64
        var ops: Double
        /// Hits / lookups in the second, per layer (nil: no lookups).
        var l1: Double?, l2: Double?, semantic: Double?
        /// Latency of every command answered in the second, µs (0 when none).
        var p50: UInt64, p95: UInt64, p99: UInt64
    }

    struct Totals: Sendable {
        var at: Int64 = 0
        var commands = 0
        var l1 = (hits: 0, misses: 0), l2 = (hits: 0, misses: 0), semantic = (hits: 0, misses: 0)
    }

    struct State: Sendable {
        var history = Deque<Sample>()
        var last = Totals()
        /// The last 10 seconds' latencies, for the headline percentiles.
        var recent = Deque<Histogram<UInt64>>()
        /// Savings at the start of the UTC day (by layer + tag): subtracted for "today".
        var day: Int64 = -1
        var dayBaseline: [String: Savings] = [:]
    }

    let report: StatsReport
    let metrics: CommandMetrics
    let policies: PolicyBook
    let transitions: BreakerTransitions
    let clock: any TimeSource
    let state = Mutex(State())
    let cached = Mutex<(Int64, String)?>(nil)

    public init(report: StatsReport, metrics: CommandMetrics, policies: PolicyBook, transitions: BreakerTransitions, clock: any TimeSource) {
        self.report = report
        self.metrics = metrics
        self.policies = policies
        self.transitions = transitions
        self.clock = clock
    }

    /// One second's sample (called once a second by ``DashboardService``).
    public func sample() async {
        let latencies = await metrics.takeLatencies()
        let now = clock.timestamp().wall
        // Each capability's statistics read once (each walks its shards or namespaces).
        let cache = report.cache.statistics(now: now), semantic = report.semantic.statistics()
        let totals = currentTotals(now: now, cache: cache, semantic: semantic)
        let savings = Self.savingsByTag(cache: cache, semantic: semantic)
        state.withLock { s in
            if s.last.at > 0 {
                let seconds = max(Double(totals.at - s.last.at) / 1000, 0.001)
                func rate(_ a: (hits: Int, misses: Int), _ b: (hits: Int, misses: Int)) -> Double? {
                    let hits = a.hits - b.hits, lookups = hits + a.misses - b.misses
                    return lookups > 0 ? Double(hits) / Double(lookups) : nil
                }
                let sample = Sample(at: now, ops: Double(max(totals.commands - s.last.commands, 0)) / seconds,
                                    l1: rate(totals.l1, s.last.l1), l2: rate(totals.l2, s.last.l2), semantic: rate(totals.semantic, s.last.semantic),
                                    p50: latencies.totalCount > 0 ? latencies.valueAtPercentile(50) : 0,
                                    p95: latencies.totalCount > 0 ? latencies.valueAtPercentile(95) : 0,
                                    p99: latencies.totalCount > 0 ? latencies.valueAtPercentile(99) : 0)
                s.history.append(sample)
                if s.history.count > Self.historySeconds { s.history.removeFirst() }
            }
            s.last = totals
            s.recent.append(latencies)
            if s.recent.count > 10 { s.recent.removeFirst() }
            let day = now / 86_400_000
            if day != s.day {
                // A new UTC day (or the first sample): today starts now, at these totals —
                // except on the process's first day, which started from zero.
                if s.day >= 0 { s.dayBaseline = savings }
                s.day = day
            }
        }
    }

    func currentTotals(now: Int64, cache: ExactCacheStatistics, semantic: SemanticCache.Statistics) -> Totals {
        let c = cache.keyspace.counters
        var t = Totals(at: now, commands: report.counters.commandsProcessed.load(ordering: .relaxed))
        t.l1 = (c.hits, c.misses)
        t.l2 = (c.l2Hits, c.l2Misses)
        t.semantic = (semantic.hits, semantic.misses)
        return t
    }

    /// Savings by "layer/tag".
    static func savingsByTag(cache: ExactCacheStatistics, semantic: SemanticCache.Statistics) -> [String: Savings] {
        var all: [String: Savings] = [:]
        for (tag, byLayer) in cache.keyspace.counters.savedByTag {
            let label = SavingsTags.shared.label(of: tag)
            all["l1/" + label, default: Savings()] = all["l1/" + label, default: Savings()] + byLayer[0]
            all["l2/" + label, default: Savings()] = all["l2/" + label, default: Savings()] + byLayer[1]
        }
        for (tag, saved) in semantic.savedByTag {
            let label = SavingsTags.shared.label(of: tag)
            all["semantic/" + label, default: Savings()] = all["semantic/" + label, default: Savings()] + saved
        }
        return all
    }

    // MARK: The JSON the page polls

    /// `/dashboard.json`, computed at most once a second (it walks budgets and namespaces):
    /// any number of open pages cost one computation a second. On a pool thread.
    public func json() -> String {
        let now = clock.timestamp().wall
        if let (at, text) = cached.withLock({ $0 }), now - at < 1000 && now >= at { return text }
        let text = compute(now: now)
        cached.withLock { $0 = (now, text) }
        return text
    }

    func compute(now: Int64) -> String {
        let cacheStats = report.cache.statistics(now: now)
        let semantic = report.semantic.statistics()
        let health = HealthReport(cache: cacheStats)
        let savings = Self.savingsByTag(cache: cacheStats, semantic: semantic)
        let (history, recent, baseline) = state.withLock { s in (Array(s.history), Array(s.recent), s.dayBaseline) }
        var merged = LatencyWindow.empty()
        for h in recent { merged.add(h) }
        let c = cacheStats.keyspace.counters
        let semHits = semantic.hits, semMisses = semantic.misses

        var root: [String: Any] = [
            "now": now, "uptime_s": (now - report.startedAt) / 1000, "mode": health.mode,
            "health": ["healthy": health.healthy, "backend": health.backend, "reason": health.reason],
            "ops_per_sec": history.last?.ops ?? 0,
        ]
        root["stats"] = report.statsObject(now: now, cache: cacheStats)
        root["hit_rate"] = ["l1": Self.ratio(c.hits, c.misses), "l2": Self.ratio(c.l2Hits, c.l2Misses),
                            "semantic": Self.ratio(semHits, semMisses)]
        root["latency_us"] = [
            "p50": merged.totalCount > 0 ? Int(merged.valueAtPercentile(50)) : 0,
            "p95": merged.totalCount > 0 ? Int(merged.valueAtPercentile(95)) : 0,
            "p99": merged.totalCount > 0 ? Int(merged.valueAtPercentile(99)) : 0,
            "count": Int(merged.totalCount),
        ]
        var total = Savings(), today = Savings()
        var byTag: [String: (all: Savings, today: Savings)] = [:]
        for (series, saved) in savings {
            let label = String(series.split(separator: "/", maxSplits: 1).last ?? "none")
            let todays = Self.minus(saved, baseline[series] ?? Savings())
            total = total + saved
            today = today + todays
            let before = byTag[label] ?? (Savings(), Savings())
            byTag[label] = (before.all + saved, before.today + todays)
        }
        root["saved"] = ["tokens": Int(total.tokens), "cost": total.cost, "hits": total.hits,
                         "tokens_today": Int(today.tokens), "cost_today": today.cost]
        root["saved_by_tag"] = byTag.sorted { $0.value.all.cost != $1.value.all.cost ? $0.value.all.cost > $1.value.all.cost : $0.key < $1.key }
            .map { tag, s -> [String: Any] in
                ["tag": tag, "hits": s.all.hits, "tokens": Int(s.all.tokens), "cost": s.all.cost,
                 "tokens_today": Int(s.today.tokens), "cost_today": s.today.cost]
            }
        root["budgets"] = report.limits.budgetsMostUsed(10, now: clock.timestamp().monotonic).map { b -> [String: Any] in
            ["key": b.key, "spent": b.spent, "budget": b.budget, "left": max(b.budget - b.spent, 0), "resets_in_ms": Int(b.resetsIn)]
        }
        root["limited_keys"] = policies.mostLimited(10).map { ["key": $0.key, "refused": $0.refused] as [String: Any] }
        let seen = transitions.snapshot.sorted {
            ($0.value.state == .closed ? 1 : 0, -$0.value.changedAt, $0.key) < ($1.value.state == .closed ? 1 : 0, -$1.value.changedAt, $1.key)
        }
        root["breakers"] = seen.prefix(50).map { name, s -> [String: Any] in
            ["name": name, "state": s.state.rawValue, "changed_at": Int(s.changedAt), "transitions": s.transitions]
        }
        root["backend"] = Dictionary(cacheStats.backendCounters, uniquingKeysWith: { a, _ in a })
        root["history"] = history.map { s -> [String: Any] in
            ["t": Int(s.at), "ops": s.ops, "l1": s.l1 as Any, "l2": s.l2 as Any, "semantic": s.semantic as Any,
             "p50": Int(s.p50), "p95": Int(s.p95), "p99": Int(s.p99)]
        }
        let data = (try? JSONSerialization.data(withJSONObject: Self.nullsFilled(root), options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// JSONSerialization wants NSNull, not nil, for "no value".
    static func nullsFilled(_ value: Any) -> Any {
        switch value {
        case let d as [String: Any]: return d.mapValues { nullsFilled($0) }
        case let a as [Any]: return a.map { nullsFilled($0) }
        case let o as Optional<Any>:
            switch o {
            case .some(let v): return v
            case .none: return NSNull()
            }
        }
    }

    static func ratio(_ hits: Int, _ misses: Int) -> Double? {
        hits + misses > 0 ? Double(hits) / Double(hits + misses) : nil
    }

    static func minus(_ a: Savings, _ b: Savings) -> Savings {
        Savings(hits: max(a.hits - b.hits, 0), tokens: max(a.tokens - b.tokens, 0), cost: max(a.cost - b.cost, 0))
    }
}
