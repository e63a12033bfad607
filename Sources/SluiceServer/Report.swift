import SluiceDomain
import SluiceProtocol

/// The numbers behind INFO and STATS, gathered once per call.
struct Report {
    let env: ServerEnvironment
    let now: Int64
    let cache: Keyspace.Summary

    init(_ env: ServerEnvironment, now: Int64) {
        self.env = env
        self.now = now
        self.cache = env.cache.keyspace.summary(now: now)
    }

    func stats() -> [(String, RESPValue)] {
        let c = cache.counters
        let counters = env.counters
        let limits = env.limiter.summary()
        let breakers = env.breakers.summary(now: now)
        var rows: [(String, RESPValue)] = [
            ("l1_hits", .integer(c.hits)),
            ("l1_misses", .integer(c.misses)),
            ("l1_entries", .integer(cache.l1.entries)),
            ("l1_bytes", .integer(cache.l1.bytes)),
            ("l1_max_bytes", .integer(env.cache.keyspace.l1Capacity)),
            ("l1_evictions", .integer(cache.l1.evictions)),
            ("l2_backend", .bulk(env.cache.l2?.kind ?? "none")),
            ("l2_hits", .integer(c.l2Hits)),
            ("l2_misses", .integer(c.l2Misses)),
            ("keys", .integer(cache.keys)),
            ("expired", .integer(c.expired)),
            ("leases_granted", .integer(c.leasesGranted)),
            ("lease_waits", .integer(c.leaseWaits)),
            ("leases_active", .integer(cache.leases)),
            ("tokens_saved", .integer(Int(c.tokensSaved))),
            ("cost_saved", .double(c.costSaved)),
            ("rl_allowed", .integer(limits.counters.allowed)),
            ("rl_denied", .integer(limits.counters.denied)),
            ("rl_keys", .integer(limits.keys)),
            ("rl_shared", .integer(env.sharedLimiter == nil ? 0 : 1)),
            ("rl_fallbacks", .integer(counters.limitFallbacks.load(ordering: .relaxed))),
            ("rl_reservations_open", .integer(limits.reservations)),
            ("rl_reservations_expired", .integer(limits.counters.reservationsExpired)),
            ("rl_keys_reclaimed", .integer(limits.counters.keysReclaimed)),
            ("rl_slot_keys", .integer(limits.slotKeys)),
            ("rl_slots_held", .integer(limits.slotsHeld)),
            ("rl_budget_keys", .integer(limits.budgetKeys)),
            ("cb_breakers", .integer(breakers.breakers)),
            ("cb_open", .integer(breakers.open)),
            ("cb_half_open", .integer(breakers.halfOpen)),
            ("connected_clients", .integer(counters.connectedClients.load(ordering: .relaxed))),
            ("commands_processed", .integer(counters.commandsProcessed.load(ordering: .relaxed))),
            ("rejected_requests", .integer(counters.rejectedRequests.load(ordering: .relaxed))),
            ("protocol_errors", .integer(counters.protocolErrors.load(ordering: .relaxed))),
        ]
        if let l2 = env.cache.l2 {
            for (name, value) in l2.statistics() { rows.append(("l2_" + name, .integer(value))) }
        }
        return rows
    }

    /// Shared mode: the Redis connection state and how often Sluice answered without it.
    func redisSection() -> [(String, [(String, String)])] {
        guard let shared = env.cache.shared else { return [] }
        var rows: [(String, String)] = [
            ("redis_url", shared.client.endpoint.description),
            ("limits_when_redis_down", env.configuration.limitsWhenRedisDown.rawValue),
            ("rl_fallbacks", String(env.counters.limitFallbacks.load(ordering: .relaxed))),
        ]
        for (name, value) in shared.statistics() { rows.append((name, String(value))) }
        return [("Redis", rows)]
    }

    func info(section: String?) -> String {
        let c = env.configuration
        let counters = env.counters
        let sections: [(String, [(String, String)])] = [
            ("Server", [
                ("redis_version", SluiceVersion.redisCompatible),
                ("sluice_version", SluiceVersion.current),
                ("redis_mode", "standalone"),
                ("tcp_port", String(c.port)),
                ("uptime_in_seconds", String((now - env.startedAt) / 1000)),
            ]),
            ("Clients", [
                ("connected_clients", String(counters.connectedClients.load(ordering: .relaxed))),
            ]),
            ("Memory", [
                ("used_memory", String(cache.l1.bytes)),
                ("maxmemory", String(env.cache.keyspace.l1Capacity)),
                ("maxmemory_policy", "s3fifo"),
            ]),
            ("Stats", [
                ("total_connections_received", String(counters.totalConnections.load(ordering: .relaxed))),
                ("total_commands_processed", String(counters.commandsProcessed.load(ordering: .relaxed))),
                ("keyspace_hits", String(cache.counters.hits + cache.counters.l2Hits)),
                ("keyspace_misses", String(cache.counters.l2Misses + (env.cache.l2 == nil ? cache.counters.misses : 0))),
                ("expired_keys", String(cache.counters.expired)),
                ("evicted_keys", String(cache.l1.evictions)),
            ]),
            ("Persistence", [
                ("l2_backend", env.cache.l2?.kind ?? "none"),
                ("data_dir", c.dataDirectory ?? ""),
            ]),
            ("Keyspace", [("db0", "keys=\(cache.keys),expires=0")]),
        ] + redisSection()
        var text = ""
        for (name, rows) in sections where section == nil || section == "all" || section == "everything" || section == name.lowercased() {
            if !text.isEmpty { text += "\r\n" }
            text += "# \(name)\r\n"
            for (k, v) in rows { text += "\(k):\(v)\r\n" }
        }
        return text
    }
}
