import SluiceServer

/// `sluice serve --print-config`: the configuration that would run, as a TOML file `--config`
/// reads back (the password is not printed).
enum ConfigurationPrinter {
    static func toml(_ c: ServerConfiguration, logLevel: String, logFormat: String) -> String {
        /// A TOML basic string: backslash, quote and control characters escaped.
        func q(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += String(format: "\\u%04X", scalar.value)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        var out = "[server]\n"
        var rows: [(String, String)] = [
            ("bind", q(c.host)), ("port", String(c.port)), ("http-port", String(c.httpPort)),
            ("data-dir", q(c.dataDirectory ?? "")), ("redis", q(c.redisURL ?? "")),
            ("redis-cluster", String(c.redisCluster)), ("redis-timeout", String(c.redisTimeoutMilliseconds)), ("limits-when-redis-down", q(c.limitsWhenRedisDown.rawValue)),
            ("l1-max-memory", String(c.l1MaxMemory)), ("max-stale", String(c.maxStaleMilliseconds)), ("threads", String(c.threads)),
            ("allow-unauthenticated-remote", String(c.allowUnauthenticatedRemote)), ("allow-flush", String(c.allowFlush)), ("max-value-size", String(c.limits.maxBulkLength)),
            ("maxclients", String(c.maxClients)),
            ("client-output-buffer-limit", q("\(c.clientOutputHardLimit) \(c.clientOutputSoftLimit) \(c.clientOutputSoftSeconds)")),
            ("maxmemory-clients", String(c.maxMemoryClients)),
            ("timeout", String(c.idleTimeoutSeconds)), ("fsync", q(c.fsync.rawValue)), ("l2-max-bytes", String(c.l2MaxBytes)),
            ("sem-max-namespaces", String(c.semanticMaxNamespaces)), ("sem-max-entries", String(c.semanticMaxTotalEntries)),
            ("sem-offload-entries", String(c.semanticOffloadEntries)), ("sem-verifier", q(c.semanticVerifier.rawValue)),
            ("sem-max-memory", String(c.semanticMaxMemory)), ("log-level", q(logLevel)), ("log-format", q(logFormat)),
        ]
        if c.redisURL == nil { rows.removeAll { $0.0 == "redis" } }
        if c.dataDirectory == nil { rows.removeAll { $0.0 == "data-dir" } }
        for (k, v) in rows { out += "\(k) = \(v)\n" }
        if c.requirePass != nil { out += "# requirepass is set (not shown)\n" }
        let p = c.policies
        for (name, spec) in p.limits.sorted(by: { $0.key < $1.key }) {
            out += "\n[limits.\(q(name))]\nrpm = \(spec.requestsPerMinute)\ntpm = \(spec.tokensPerMinute)\n"
            out += "request_burst = \(spec.requestBurst)\ntoken_burst = \(spec.tokenBurst)\n"
            if p.dryRun.contains("limits." + name) { out += "dryrun = true\n" }
        }
        for (name, b) in p.budgets.sorted(by: { $0.key < $1.key }) {
            let period: String
            if case .rolling(let ms) = b.period { period = "period_ms = \(ms)" } else { period = "period = \"\(b.period)\"" }
            out += "\n[budgets.\(q(name))]\nbudget = \(b.budget)\n\(period)\nnear = \(b.near)\n"
            if p.dryRun.contains("budgets." + name) { out += "dryrun = true\n" }
        }
        for (name, b) in p.breakers.sorted(by: { $0.key < $1.key }) {
            out += "\n[breakers.\(q(name))]\n"
            if let v = b.window { out += "window = \(v)\n" }
            if let v = b.minimumCalls { out += "min_calls = \(v)\n" }
            if let v = b.failureRate { out += "failure_rate = \(v)\n" }
            if let v = b.slowCallMilliseconds { out += "slow_ms = \(v)\n" }
            if let v = b.slowCallRate { out += "slow_rate = \(v)\n" }
            if let v = b.openMilliseconds { out += "open_ms = \(v)\n" }
            if let v = b.probes { out += "probes = \(v)\n" }
        }
        for (name, n) in p.namespaces.sorted(by: { $0.key < $1.key }) {
            out += "\n[namespaces.\(q(name))]\n"
            if let v = n.minScore { out += "min_score = \(v)\n" }
            if let v = n.maxEntries { out += "max_entries = \(v)\n" }
        }
        return out
    }
}
