import Foundation
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// The numbers behind INFO and STATS: asked from each capability, gathered once per call.
public final class StatsReport: Sendable {
    let cache: any ExactCache
    let limits: any RateLimits
    let breakers: any Breakers
    let semantic: any SemanticStore
    let counters: ServerCounters
    let configuration: ServerConfiguration
    let startedAt: Int64

    public init(cache: any ExactCache, limits: any RateLimits, breakers: any Breakers, semantic: any SemanticStore,
                counters: ServerCounters, configuration: ServerConfiguration, startedAt: Int64) {
        self.cache = cache
        self.limits = limits
        self.breakers = breakers
        self.semantic = semantic
        self.counters = counters
        self.configuration = configuration
        self.startedAt = startedAt
    }

    /// `cache`: the exact cache's statistics when the caller has them already.
    func stats(now: Int64, cache cached: ExactCacheStatistics? = nil) -> [(String, RESPValue)] {
        let cacheStats = cached ?? cache.statistics(now: now)
        let c = cacheStats.keyspace.counters
        let l1 = cacheStats.keyspace.l1
        let limitStats = limits.statistics()
        let rl = limitStats.local
        let cb = breakers.statistics(now: now)
        var rows: [(String, RESPValue)] = [
            ("l1_hits", .integer(c.hits)),
            ("l1_misses", .integer(c.misses)),
            ("l1_entries", .integer(l1.entries)),
            ("l1_bytes", .integer(l1.bytes)),
            ("l1_max_bytes", .integer(cacheStats.l1Capacity)),
            ("l1_evictions", .integer(l1.evictions)),
            ("l2_backend", .bulk(cacheStats.backend)),
            ("l2_hits", .integer(c.l2Hits)),
            ("l2_misses", .integer(c.l2Misses)),
            ("stale_hits", .integer(c.staleHits)),
            ("keys", .integer(cacheStats.keyspace.keys)),
            ("expired", .integer(c.expired)),
            ("leases_granted", .integer(c.leasesGranted)),
            ("lease_waits", .integer(c.leaseWaits)),
            ("leases_active", .integer(cacheStats.keyspace.leases)),
            ("tokens_saved", .integer(Int(c.tokensSaved))),
            ("cost_saved", .double(c.costSaved)),
            ("rl_allowed", .integer(rl.counters.allowed)),
            ("rl_denied", .integer(rl.counters.denied)),
            ("rl_keys", .integer(rl.keys)),
            ("rl_shared", .integer(limitStats.shared ? 1 : 0)),
            ("rl_fallbacks", .integer(limitStats.fallbacks)),
            ("rl_reservations_open", .integer(rl.reservations)),
            ("rl_reservations_expired", .integer(rl.counters.reservationsExpired)),
            ("rl_keys_reclaimed", .integer(rl.counters.keysReclaimed)),
            ("rl_slot_keys", .integer(rl.slotKeys)),
            ("rl_slots_held", .integer(rl.slotsHeld)),
            ("rl_slots_subscribed", .integer(limitStats.slotsSubscribed ? 1 : 0)),
            ("rl_slot_waiters_shared", .integer(limitStats.slotWaiters)),
            ("rl_budget_keys", .integer(rl.budgetKeys)),
            ("cb_breakers", .integer(cb.breakers)),
            ("cb_open", .integer(cb.open)),
            ("cb_half_open", .integer(cb.halfOpen)),
            ("connected_clients", .integer(counters.connectedClients.load(ordering: .relaxed))),
            ("commands_processed", .integer(counters.commandsProcessed.load(ordering: .relaxed))),
            ("rejected_requests", .integer(counters.rejectedRequests.load(ordering: .relaxed))),
            ("protocol_errors", .integer(counters.protocolErrors.load(ordering: .relaxed))),
            ("rejected_connections", .integer(counters.rejectedConnections.load(ordering: .relaxed))),
            ("output_limit_disconnects", .integer(counters.outputLimitDisconnects.load(ordering: .relaxed))),
            ("evicted_clients", .integer(counters.clientMemoryEvictions.load(ordering: .relaxed))),
            ("client_output_bytes", .integer(counters.clientOutput.counted)),
            ("idle_disconnects", .integer(counters.idleDisconnects.load(ordering: .relaxed))),
            ("auth_failures", .integer(counters.authFailures.load(ordering: .relaxed))),
        ]
        for (name, _, value) in counters.llm.lookups { rows.append((name, .integer(value))) }
        rows.append(("llm_backfills", .integer(counters.llm.backfills.load(ordering: .relaxed))))
        rows.append(("llm_backfills_retired", .integer(counters.llm.backfillsRetired.load(ordering: .relaxed))))
        rows.append(("llm_backfills_skipped", .integer(counters.llm.backfillsSkipped.load(ordering: .relaxed))))
        rows.append(("llm_sets", .integer(counters.llm.sets.load(ordering: .relaxed))))
        for (name, value) in cacheStats.backendCounters { rows.append(("l2_" + name, .integer(value))) }
        return rows
    }

    /// STATS as a JSON object (`/stats.json`, and the dashboard's "stats").
    func statsObject(now: Int64, cache: ExactCacheStatistics? = nil) -> [String: Any] {
        var object: [String: Any] = [:]
        for (name, value) in stats(now: now, cache: cache) {
            switch value {
            case .integer(let n): object[name] = n
            case .double(let d): object[name] = d.isFinite ? d : 0
            case .bulkString(let b?): object[name] = String(buffer: b)
            default: break
            }
        }
        return object
    }

    func statsJSON(now: Int64) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: statsObject(now: now), options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Keys in the cache (DBSIZE).
    func keyCount(now: Int64) -> Int {
        cache.statistics(now: now).keyspace.keys
    }

    /// `sections`: lower-case names; empty, or holding "default", "all" or "everything", for all.
    func info(sections asked: Set<String>, now: Int64) -> String {
        let c = configuration
        let cacheStats = cache.statistics(now: now)
        let hits = cacheStats.keyspace.counters
        var sections: [(String, [(String, String)])] = [
            ("Server", [
                ("redis_version", SluiceVersion.redisCompatible),
                ("sluice_version", SluiceVersion.current),
                ("redis_mode", "standalone"),
                ("tcp_port", String(c.port)),
                ("uptime_in_seconds", String((now - startedAt) / 1000)),
            ]),
            ("Clients", [
                ("connected_clients", String(counters.connectedClients.load(ordering: .relaxed))),
                ("maxclients", String(c.maxClients)),
            ]),
            ("Memory", [
                ("used_memory", String(cacheStats.keyspace.l1.bytes)),
                ("maxmemory", String(cacheStats.l1Capacity)),
                ("maxmemory_policy", "s3fifo"),
                ("mem_clients_normal", String(counters.clientOutput.counted)),
                ("maxmemory_clients", String(c.maxMemoryClients)),
            ]),
            ("Stats", [
                ("total_connections_received", String(counters.totalConnections.load(ordering: .relaxed))),
                ("total_commands_processed", String(counters.commandsProcessed.load(ordering: .relaxed))),
                ("keyspace_hits", String(hits.hits + hits.l2Hits)),
                ("keyspace_misses", String(hits.l2Misses + (cacheStats.backend == "none" ? hits.misses : 0))),
                ("expired_keys", String(hits.expired)),
                ("evicted_keys", String(cacheStats.keyspace.l1.evictions)),
                ("evicted_clients", String(counters.clientMemoryEvictions.load(ordering: .relaxed))),
            ]),
            ("CPU", Self.cpuRows()),
            ("Persistence", [
                ("l2_backend", cacheStats.backend),
                ("data_dir", c.dataDirectory ?? ""),
            ]),
            ("Keyspace", [("db0", "keys=\(cacheStats.keyspace.keys),expires=0")]),
        ]
        if let url = c.redisURL, case .success(let endpoints) = RedisEndpoint.parseList(url), let endpoint = endpoints.first {
            // Shared mode: the Redis connection state and how often Sluice answered without it.
            var rows: [(String, String)] = [
                ("redis_url", endpoint.description),
                ("limits_when_redis_down", c.limitsWhenRedisDown.rawValue),
                ("rl_fallbacks", String(limits.statistics().fallbacks)),
            ]
            for (name, value) in cacheStats.backendCounters { rows.append((name, String(value))) }
            rows += cacheStats.backendDetails
            sections.append(("Redis", rows))
        }
        var text = ""
        let everything = asked.isEmpty || !asked.isDisjoint(with: ["default", "all", "everything"])
        for (name, rows) in sections where everything || asked.contains(name.lowercased()) {
            if !text.isEmpty { text += "\r\n" }
            text += "# \(name)\r\n"
            for (k, v) in rows { text += "\(k):\(v)\r\n" }
        }
        return text
    }

    /// Redis's `# CPU` rows: seconds of CPU the process used, in the kernel and in user space
    /// (load generators read them before and after a run: server CPU per request).
    static func cpuRows() -> [(String, String)] {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return [] }
        func seconds(_ t: timeval) -> String {
            let micros = String(Int(t.tv_usec))
            return "\(t.tv_sec).\(String(repeating: "0", count: max(0, 6 - micros.count)))\(micros)"
        }
        return [("used_cpu_sys", seconds(usage.ru_stime)), ("used_cpu_user", seconds(usage.ru_utime)),
                ("used_cpu_sys_children", "0.000000"), ("used_cpu_user_children", "0.000000")]
    }
}
