import CoreMetrics
import NIOCore
import Prometheus
import SluiceBackends
import SluiceDomain
import Synchronization

/// `/metrics`: Sluice's numbers in Prometheus's text format, through swift-metrics with
/// swift-prometheus's registry behind it (one registry per node; nothing is bootstrapped
/// globally, so tests run several nodes in one process).
///
/// Two kinds of sources:
/// - per request, each command's latency histogram, recorded by the connection handler
///   (``CommandMetrics``);
/// - the capabilities' own counters — the numbers STATS and INFO show — read at each scrape:
///   the Prometheus counters move by what the capability's counter moved since the last
///   scrape, the gauges are set. The hot paths keep only the counters they already had.
///
/// Label sets are bounded: commands by the command table, tags by ``SavingsTags``, trap rules
/// by the verifier's fixed set, namespaces by ``maxNamespaceLabels`` (later ones are "other").
public final class MetricsExporter: Sendable {
    /// Namespaces with a label of their own; the rest are summed under "other".
    public static let maxNamespaceLabels = 50
    /// Latency buckets of every command (seconds: 10 µs to 1 s).
    public static let commandBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let report: StatsReport
    let policies: PolicyBook
    let transitions: BreakerTransitions
    let mirror: Mutex<Mirror>
    /// Limited keys shown by name in `sluice_limit_top_refused`.
    public static let topLimitedKeys = 10
    /// Breakers with series of their own; the rest are summed under "other".
    public static let maxBreakerLabels = 100

    public init(report: StatsReport, policies: PolicyBook, transitions: BreakerTransitions = BreakerTransitions()) {
        self.policies = policies
        self.transitions = transitions
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [CommandMetrics.metricName: Self.commandBuckets]
        self.registry = registry
        self.factory = factory
        self.report = report
        mirror = Mutex(Mirror(factory: factory))
    }

    /// The per-command histograms, for the connection handlers of `table`.
    public func commandMetrics(for table: CommandTable, loops: [any EventLoop]) -> CommandMetrics {
        CommandMetrics(table: table, factory: factory, loops: loops)
    }

    /// Brings every series up to date and renders them.
    public func render(now: Int64) -> [UInt8] {
        refresh(now: now)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }

    /// Reads the capabilities' counters into the Prometheus series (one scrape at a time).
    public func refresh(now: Int64) {
        // The sources are read under the mirror's lock: two scrapes at once must not take an
        // older reading for a newer one (that would look like a reset and count twice).
        mirror.withLock { m in
            let cache = report.cache.statistics(now: now)
            let limits = report.limits.statistics()
            let breakers = report.breakers.statistics(now: now)
            let semantic = report.semantic.statistics()
            let decisions = policies.decisionCounts
            let spent = policies.spentByPolicy
            let seenBreakers = transitions.snapshot
            let counters = report.counters
            // Connections.
            m.gauge("sluice_connections", [], counters.connectedClients.load(ordering: .relaxed))
            m.gauge("sluice_client_output_bytes", [], counters.clientOutput.counted)
            m.counter("sluice_connections_received_total", [], counters.totalConnections.load(ordering: .relaxed))
            m.counter("sluice_connections_closed_total", [("reason", "maxclients")], counters.rejectedConnections.load(ordering: .relaxed))
            m.counter("sluice_connections_closed_total", [("reason", "idle")], counters.idleDisconnects.load(ordering: .relaxed))
            m.counter("sluice_connections_closed_total", [("reason", "output_limit")], counters.outputLimitDisconnects.load(ordering: .relaxed))
            m.counter("sluice_connections_closed_total", [("reason", "client_memory")], counters.clientMemoryEvictions.load(ordering: .relaxed))
            m.counter("sluice_protocol_errors_total", [], counters.protocolErrors.load(ordering: .relaxed))
            m.counter("sluice_requests_rejected_total", [], counters.rejectedRequests.load(ordering: .relaxed))
            m.counter("sluice_auth_failures_total", [], counters.authFailures.load(ordering: .relaxed))
            m.gauge("sluice_allocator_free_bytes", [], counters.allocatorFreeBytes.load(ordering: .relaxed))
            m.counter("sluice_allocator_releases_total", [], counters.allocatorReleases.load(ordering: .relaxed))
            // LLM.GET by the layer that answered, and what LLM.* wrote.
            for (_, layer, value) in counters.llm.lookups { m.counter("sluice_llm_lookups_total", [("layer", layer)], value) }
            m.counter("sluice_llm_backfills_total", [], counters.llm.backfills.load(ordering: .relaxed))
            m.counter("sluice_llm_backfills_retired_total", [], counters.llm.backfillsRetired.load(ordering: .relaxed))
            m.counter("sluice_llm_backfills_skipped_total", [], counters.llm.backfillsSkipped.load(ordering: .relaxed))
            m.counter("sluice_llm_sets_total", [], counters.llm.sets.load(ordering: .relaxed))

            // The exact cache: L1, and L2 (SQLite or Redis).
            let c = cache.keyspace.counters, l1 = cache.keyspace.l1
            m.counter("sluice_cache_hits_total", [("layer", "l1")], c.hits)
            m.counter("sluice_cache_misses_total", [("layer", "l1")], c.misses)
            if cache.backend != "none" {
                m.counter("sluice_cache_hits_total", [("layer", "l2")], c.l2Hits)
                m.counter("sluice_cache_misses_total", [("layer", "l2")], c.l2Misses)
            }
            m.gauge("sluice_cache_entries", [("layer", "l1")], l1.entries)
            m.gauge("sluice_cache_bytes", [("layer", "l1")], l1.bytes)
            m.gauge("sluice_cache_max_bytes", [("layer", "l1")], cache.l1Capacity)
            m.counter("sluice_cache_evictions_total", [("layer", "l1")], l1.evictions)
            m.counter("sluice_cache_expired_total", [("layer", "exact")], c.expired)
            m.gauge("sluice_cache_keys", [], cache.keyspace.keys)
            m.counter("sluice_leases_granted_total", [], c.leasesGranted)
            m.counter("sluice_lease_waits_total", [], c.leaseWaits)
            m.gauge("sluice_leases_active", [], cache.keyspace.leases)
            for (tag, byLayer) in c.savedByTag {
                for (layer, saved) in zip(["l1", "l2"], byLayer) where saved.hits > 0 {
                    m.saved(layer: layer, tag: tag, saved)
                }
            }
            let backend = Dictionary(cache.backendCounters, uniquingKeysWith: { a, _ in a })
            switch cache.backend {
            case "sqlite":
                m.gauge("sluice_sqlite_up", [], 1 - (backend["failing"] ?? 0))
                m.gauge("sluice_cache_bytes", [("layer", "l2")], backend["bytes"] ?? 0)
                m.gauge("sluice_cache_max_bytes", [("layer", "l2")], backend["max_bytes"] ?? 0)
                m.counter("sluice_cache_evictions_total", [("layer", "l2")], backend["evicted_rows"] ?? 0)
                m.counter("sluice_sqlite_writes_total", [], backend["writes"] ?? 0)
                m.counter("sluice_sqlite_write_errors_total", [], backend["write_errors"] ?? 0)
                m.counter("sluice_sqlite_batches_total", [], backend["batches"] ?? 0)
                // Mean commit latency: rate(..._seconds_total) / rate(sluice_sqlite_batches_total).
                m.floatCounter("sluice_sqlite_commit_seconds_total", [], Double(backend["commit_us"] ?? 0) / 1e6)
                m.counter("sluice_sqlite_reads_total", [], backend["reads"] ?? 0)
                m.counter("sluice_sqlite_reads_refused_total", [], backend["reads_refused"] ?? 0)
            case "redis":
                m.gauge("sluice_redis_up", [], backend["redis_connected"] ?? 0)
                m.gauge("sluice_redis_subscribed", [], backend["redis_subscribed"] ?? 0)
                m.counter("sluice_redis_commands_total", [], backend["redis_commands"] ?? 0)
                m.counter("sluice_redis_failures_total", [], backend["redis_failures"] ?? 0)
                m.counter("sluice_redis_connects_total", [], backend["redis_connects"] ?? 0)
                m.counter("sluice_redis_disconnects_total", [], backend["redis_disconnects"] ?? 0)
                // Mean round trip of a pipelined batch: rate(..._seconds_total) / rate(..._round_trips_total).
                m.counter("sluice_redis_round_trips_total", [], backend["redis_round_trips"] ?? 0)
                m.floatCounter("sluice_redis_round_trip_seconds_total", [], Double(backend["redis_round_trip_us"] ?? 0) / 1e6)
                m.counter("sluice_redis_invalidations_received_total", [], backend["redis_invalidations_received"] ?? 0)
                m.counter("sluice_redis_invalidations_lost_total", [], backend["redis_invalidations_lost"] ?? 0)
                m.counter("sluice_redis_fallbacks_total", [], limits.fallbacks)
            default:
                break
            }

            // The semantic layer.
            // (Clamped: the totals are kept with relaxed atomics and can read below zero for a
            // moment while a namespace is dropped under writes.)
            m.gauge("sluice_cache_entries", [("layer", "semantic")], max(semantic.entries, 0))
            m.gauge("sluice_cache_bytes", [("layer", "semantic")], max(semantic.bytes, 0))
            var present: Set<String> = []
            for (name, info) in semantic.namespaces {
                // Each making of a namespace is a source of its own: one dropped and made again
                // between two scrapes starts from zero without taking anything back.
                let part = "ns:\(info.generation)#" + name
                present.insert(part)
                let label = m.ownLabel(name, in: \.namespaceLabels, bound: MetricsExporter.maxNamespaceLabels) ? name : "other"
                m.counterPart("sluice_semantic_lookups_total", [("namespace", label), ("result", "hit")], part: part, info.hits)
                m.counterPart("sluice_semantic_lookups_total", [("namespace", label), ("result", "miss")], part: part, info.misses)
            }
            m.counter("sluice_cache_hits_total", [("layer", "semantic")], semantic.hits)
            m.counter("sluice_cache_misses_total", [("layer", "semantic")], semantic.misses)
            m.counter("sluice_cache_evictions_total", [("layer", "semantic")], semantic.evictions)
            m.counter("sluice_semantic_feedback_total", [("verdict", "good")], semantic.feedbackGood)
            m.counter("sluice_semantic_feedback_total", [("verdict", "bad")], semantic.feedbackBad)
            for (tag, saved) in semantic.savedByTag where saved.hits > 0 {
                m.saved(layer: "semantic", tag: tag, saved)
            }
            m.forgetParts(except: present)
            for (rule, count) in semantic.trapsByRule {
                m.counter("sluice_semantic_traps_total", [("rule", rule)], count)
            }

            // Limits and breakers.
            let rl = limits.local
            // The most refused keys now (a sketch of 64, the top 10 shown): a gauge per key that
            // is in the top, removed when it leaves it, so the label set stays at 10.
            m.topKeys(policies.mostLimited(MetricsExporter.topLimitedKeys))
            for (policy, amount) in spent {
                m.floatCounter("sluice_budget_spent_total", [("policy", policy)], amount)
            }
            for (policy, n) in policies.dryRunRefusalsByPolicy {
                m.counter("sluice_limit_dryrun_refusals_total", [("policy", policy)], n)
            }
            for (policy, d) in decisions {
                m.counter("sluice_limit_decisions_total", [("policy", policy), ("decision", "allowed")], d.allowed)
                m.counter("sluice_limit_decisions_total", [("policy", policy), ("decision", "limited")], d.limited)
                m.counter("sluice_limit_near_total", [("policy", policy)], d.nearLimit)
            }
            m.gauge("sluice_limit_keys", [], rl.keys)
            m.gauge("sluice_limit_reservations_open", [], rl.reservations)
            m.counter("sluice_limit_reservations_expired_total", [], rl.counters.reservationsExpired)
            m.gauge("sluice_limit_slots_held", [], rl.slotsHeld)
            m.gauge("sluice_limit_budget_keys", [], rl.budgetKeys)
            m.gauge("sluice_breakers", [("state", "closed")], breakers.breakers - breakers.open - breakers.halfOpen)
            m.gauge("sluice_breakers", [("state", "open")], breakers.open)
            m.gauge("sluice_breakers", [("state", "half_open")], breakers.halfOpen)
            // Per breaker as this instance last saw it: 0 closed, 1 half-open, 2 open.
            for (name, seen) in seenBreakers {
                if m.ownLabel(name, in: \.breakerLabels, bound: MetricsExporter.maxBreakerLabels) {
                    m.gauge("sluice_breaker_state", [("breaker", name)], seen.state == .closed ? 0 : seen.state == .halfOpen ? 1 : 2)
                    m.counter("sluice_breaker_transitions_total", [("breaker", name)], seen.transitions)
                } else {
                    m.counterPart("sluice_breaker_transitions_total", [("breaker", "other")], part: "cb:" + name, seen.transitions)
                }
            }
            m.counterPart("sluice_breaker_transitions_total", [("breaker", "other")], part: "cb:", transitions.untrackedTransitions)
        }
    }

    /// What the last scrape saw, and the swift-metrics handles, by series.
    struct Mirror {
        let factory: PrometheusMetricsFactory
        var counters: [String: CoreMetrics.Counter] = [:]
        var floatCounters: [String: CoreMetrics.FloatingPointCounter] = [:]
        var gauges: [String: CoreMetrics.Gauge] = [:]
        /// The source's value at the last scrape, by series (and part, for summed series).
        var last: [String: Double] = [:]
        /// Namespaces with a label of their own (at most ``MetricsExporter/maxNamespaceLabels``).
        var namespaceLabels: Set<String> = []
        /// Breakers with a label of their own (at most ``MetricsExporter/maxBreakerLabels``).
        var breakerLabels: Set<String> = []

        init(factory: PrometheusMetricsFactory) {
            self.factory = factory
        }

        static func key(_ name: String, _ labels: [(String, String)], part: String = "") -> String {
            var key = name
            for (k, v) in labels { key += "\u{1}" + k + "=" + v }
            return part.isEmpty ? key : key + "\u{2}" + part
        }

        /// How much a cumulative source moved since the last scrape. A source that went back
        /// (a namespace dropped and made again) counts from zero.
        mutating func delta(_ key: String, _ value: Double) -> Double {
            let before = last[key] ?? 0
            last[key] = value
            return value >= before ? value - before : value
        }

        mutating func counter(_ name: String, _ labels: [(String, String)], _ value: Int) {
            counterPart(name, labels, part: "", value)
        }

        /// A counter fed by several sources (`part`), e.g. every namespace summed under "other".
        mutating func counterPart(_ name: String, _ labels: [(String, String)], part: String, _ value: Int) {
            let series = Self.key(name, labels)
            let moved = delta(Self.key(name, labels, part: part), Double(value))
            let counter = counters[series] ?? CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            counters[series] = counter
            // Sources are Ints, so a move fits in Int64; clamped all the same (a Double near 2⁶³
            // would trap on conversion).
            if moved > 0 { counter.increment(by: moved < 9.0e18 ? Int64(moved) : Int64.max / 2) }
        }

        mutating func floatCounter(_ name: String, _ labels: [(String, String)], _ value: Double) {
            floatCounterPart(name, labels, part: "", value)
        }

        mutating func floatCounterPart(_ name: String, _ labels: [(String, String)], part: String, _ value: Double) {
            let series = Self.key(name, labels)
            let moved = delta(Self.key(name, labels, part: part), value)
            let counter = floatCounters[series] ?? CoreMetrics.FloatingPointCounter(label: name, dimensions: labels, factory: factory)
            floatCounters[series] = counter
            if moved > 0 { counter.increment(by: moved) }
        }

        mutating func gauge(_ name: String, _ labels: [(String, String)], _ value: Int) {
            let series = Self.key(name, labels)
            let gauge = gauges[series] ?? CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
            gauges[series] = gauge
            gauge.record(Double(value))
        }

        /// One tag's savings; tags past the label bound share the "other" series, each as its
        /// own part.
        mutating func saved(layer: String, tag: UInt16, _ saved: Savings) {
            let labels = [("layer", layer), ("tag", SavingsTags.shared.label(of: tag))]
            let part = "tag:\(tag)"
            counterPart("sluice_saved_hits_total", labels, part: part, saved.hits)
            counterPart("sluice_tokens_saved_total", labels, part: part, Int(saved.tokens))
            floatCounterPart("sluice_cost_saved_total", labels, part: part, saved.cost)
        }

        /// Gauges of the keys in the top now.
        var topKeyGauges: [String: CoreMetrics.Gauge] = [:]

        mutating func topKeys(_ top: [(key: String, refused: Int)]) {
            let now = Set(top.map(\.key))
            for (key, gauge) in topKeyGauges where !now.contains(key) {
                gauge.destroy()
                topKeyGauges[key] = nil
            }
            for (key, refused) in top {
                let gauge = topKeyGauges[key] ?? CoreMetrics.Gauge(label: "sluice_limit_top_refused", dimensions: [("key", key)], factory: factory)
                topKeyGauges[key] = gauge
                gauge.record(Double(refused))
            }
        }

        /// Whether `name` has a label of its own: the first `bound` names seen get one for good,
        /// later ones are summed under "other" (so no series ever changes hands).
        /// A name with a control character (CR, NUL, ESC ...; a client chooses namespaces and
        /// breaker names) never gets one: the exposition format escapes only line feeds, and a
        /// raw CR or NUL in a label value breaks scrapers and terminals. It is summed under
        /// "other", as names past the bound are.
        mutating func ownLabel(_ name: String, in labels: WritableKeyPath<Mirror, Set<String>>, bound: Int) -> Bool {
            if self[keyPath: labels].contains(name) { return true }
            guard name.unicodeScalars.allSatisfy({ !($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) }) else { return false }
            guard self[keyPath: labels].count < bound else { return false }
            self[keyPath: labels].insert(name)
            return true
        }

        /// Drops what was remembered of sources that are gone (dropped namespaces), so the
        /// memory of past scrapes stays as large as what exists now.
        mutating func forgetParts(except present: Set<String>) {
            for key in last.keys {
                guard let cut = key.lastIndex(of: "\u{2}") else { continue }
                let part = key[key.index(after: cut)...]
                if part.hasPrefix("ns:") && !present.contains(String(part)) { last[key] = nil }
            }
        }
    }
}
