import ArgumentParser
import Foundation
import Logging
import Synchronization
import ServiceLifecycle
import SluiceBackends
import SluiceServer

@main
struct Sluice: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Cache and rate-limit service for LLM agent servers, spoken to over the Redis protocol.",
        discussion: """
            Sluice answers over RESP2, so redis-cli, redis-benchmark and any Redis client library work \
            as clients. With no flags, `sluice serve` listens on 127.0.0.1:7379 and keeps its L2 in an \
            SQLite file under ./sluice-data. Every flag has a SLUICE_* environment variable; a flag wins.
            """,
        version: SluiceVersion.current,
        subcommands: [Serve.self, Bench.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Sluice server.",
        discussion: """
            Examples:
              sluice serve                          # 127.0.0.1:7379, ./sluice-data
              sluice serve --port 6390 --l1-max-memory 1gb
              SLUICE_REQUIREPASS=secret sluice serve --bind 0.0.0.0
            Stop with Ctrl-C or SIGTERM: the listener closes and pending L2 writes are flushed.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Address to listen on. Env: SLUICE_BIND. (default: 127.0.0.1)", valueName: "address"))
    var bind: String?

    @Option(name: [.short, .long], help: ArgumentHelp("TCP port. Env: SLUICE_PORT. (default: 7379)", valueName: "port"))
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("Operating port on the same address: /metrics (Prometheus), /health, /ready, the dashboard at /. Same password as the protocol port (Bearer or Basic auth; /health and /ready are open). 0 = off. Env: SLUICE_HTTP_PORT. (default: 7380)", valueName: "port"))
    var httpPort: Int?

    @Option(name: .long, help: ArgumentHelp("Directory of the embedded L2 (SQLite, survives restarts). Env: SLUICE_DATA_DIR. (default: ./sluice-data)", valueName: "path"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("Shared mode: keep L2 in this Redis (redis://[[user]:password@]host[:port][/db]), shared by every Sluice pointed at it; other instances' writes drop this one's L1 copies. Env: SLUICE_REDIS. (default: embedded SQLite L2)", valueName: "url"))
    var redis: String?

    @Flag(name: .long, help: "Shared mode: --redis is a Redis Cluster (also detected from INFO cluster, or from several host:port in the URL, e.g. redis://127.0.0.1:7000,127.0.0.1:7001). Env: SLUICE_REDIS_CLUSTER=1.")
    var redisCluster = false

    @Option(name: .long, help: ArgumentHelp("Shared mode: ms a Redis command may take before Sluice answers without Redis (and reconnects). Env: SLUICE_REDIS_TIMEOUT. (default: 2000)", valueName: "ms"))
    var redisTimeout: Int?

    @Option(name: .long, help: ArgumentHelp("Shared mode: how rate limits decide while Redis is down: local (this instance's own buckets), deny, allow. Env: SLUICE_LIMITS_WHEN_REDIS_DOWN. (default: local)", valueName: "policy"))
    var limitsWhenRedisDown: String?

    @Option(name: .long, help: ArgumentHelp("Keep expired cache entries this many ms longer, for CACHE.GET key STALE ms (stale-if-error: an answer expired a little is better than none while the upstream fails); at most 30 days. Env: SLUICE_MAX_STALE. (default: 0, reclaimed on expiry)", valueName: "ms"))
    var maxStale: Int?

    @Option(name: .long, help: ArgumentHelp("Memory budget of the in-process L1: bytes, or with kb/mb/gb. Env: SLUICE_L1_MAX_MEMORY. (default: 256mb)", valueName: "size"))
    var l1MaxMemory: String?

    @Option(name: .long, help: ArgumentHelp("Event-loop threads; 0 = one per core. Env: SLUICE_THREADS. (default: 0)", valueName: "n"))
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("Require AUTH with this password. Env: SLUICE_REQUIREPASS.", valueName: "password"))
    var requirepass: String?

    @Flag(name: .long, help: "Allow binding a non-loopback address without --requirepass. Env: SLUICE_ALLOW_UNAUTHENTICATED_REMOTE=1.")
    var allowUnauthenticatedRemote = false

    @Flag(name: .long, help: "Allow FLUSHDB / FLUSHALL, which delete every exact-cache key — in shared mode, every instance's (off: they answer an error, so one application's cache.clear() cannot wipe a cache others share). Env: SLUICE_ALLOW_FLUSH=1.")
    var allowFlush = false

    @Option(name: .long, help: ArgumentHelp("Largest value (bulk string) accepted: bytes, or with kb/mb/gb. Env: SLUICE_MAX_VALUE_SIZE. (default: 16mb)", valueName: "size"))
    var maxValueSize: String?

    @Option(name: .long, help: ArgumentHelp("Most client connections at once; one more is answered '-ERR max number of clients reached' and closed. Sluice raises its open-files limit to fit them (or allows fewer, with a warning). Env: SLUICE_MAXCLIENTS. (default: 10000)", valueName: "n"))
    var maxclients: Int?

    @Option(name: .long, help: ArgumentHelp("Client output buffer limit, as Redis's: '<hard> <soft> <seconds>'. A client whose unsent replies exceed hard is disconnected at once; above soft Sluice stops running its requests, and disconnects it if that lasts the seconds. 0 disables a part. Env: SLUICE_CLIENT_OUTPUT_BUFFER_LIMIT. (default: '64mb 1mb 60')", valueName: "limits"))
    var clientOutputBufferLimit: String?

    @Option(name: .long, help: ArgumentHelp("Replies held for all clients together (what each holds past 64kb: unread, or queued behind slower replies), as Redis 7's maxmemory-clients. Past it the clients holding the most are disconnected, so that many clients that do not read cannot exhaust memory though each stays under its own limit. 0 = no limit. Env: SLUICE_MAXMEMORY_CLIENTS. (default: 1gb)", valueName: "bytes"))
    var maxmemoryClients: String?

    @Option(name: .long, help: ArgumentHelp("Close a connection idle for this many seconds; 0 = never. Env: SLUICE_TIMEOUT. (default: 0)", valueName: "seconds"))
    var timeout: Int?

    @Option(name: .long, help: ArgumentHelp("Embedded mode: when a write is acknowledged. everysec: at once, on disk within a second (as Redis's appendfsync everysec); always: after it is synced to disk; no: at once, the OS syncs. Env: SLUICE_FSYNC. (default: everysec)", valueName: "policy"))
    var fsync: String?

    @Option(name: .long, help: ArgumentHelp("Embedded mode: most bytes the SQLite file holds; past it the oldest entries go (0 = no bound). Env: SLUICE_L2_MAX_BYTES. (default: 1gb)", valueName: "size"))
    var l2MaxBytes: String?

    @Option(name: .long, help: ArgumentHelp("Most semantic namespaces. Env: SLUICE_SEM_MAX_NAMESPACES. (default: 10000)", valueName: "n"))
    var semMaxNamespaces: Int?

    @Option(name: .long, help: ArgumentHelp("Most semantic entries in all namespaces together; when full, a new entry takes its namespace's oldest one's place. Env: SLUICE_SEM_MAX_ENTRIES. (default: 1000000)", valueName: "n"))
    var semMaxEntries: Int?

    @Option(name: .long, help: ArgumentHelp("Semantic namespaces with more entries than this are searched and written on their own threads, not the event loop (a scan of many vectors takes milliseconds). Env: SLUICE_SEM_OFFLOAD_ENTRIES. (default: 10000)", valueName: "n"))
    var semOffloadEntries: Int?

    @Option(name: .long, help: ArgumentHelp("The semantic lookup's second stage: basic (numbers, negation, names) or wordnet (short prompts aligned word by word: opposites, siblings, substitutions, order). Env: SLUICE_SEM_VERIFIER. (default: wordnet)", valueName: "kind"))
    var semVerifier: String?

    @Option(name: .long, help: ArgumentHelp("Most memory of semantic entries together (prompts, responses, vectors); when full, a new entry takes its namespace's oldest one's place. Env: SLUICE_SEM_MAX_MEMORY. (default: 1gb)", valueName: "size"))
    var semMaxMemory: String?

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical. Env: SLUICE_LOG_LEVEL. (default: info)", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("Log lines as text (for people) or json (one object per line, for log shippers). Env: SLUICE_LOG_FORMAT. (default: text)", valueName: "format"))
    var logFormat: String?

    @Option(name: .long, help: ArgumentHelp("A TOML file: settings under [server] (the flags' names, e.g. l1-max-memory = \"1gb\") and named policies under [limits.NAME], [budgets.NAME], [breakers.NAME], [namespaces.NAME]. Flags and SLUICE_* variables win over it. SIGHUP reloads its policies. Env: SLUICE_CONFIG. See docs/OPERATIONS.md.", valueName: "path"))
    var config: String?

    @Flag(name: .long, help: "Print the configuration that would run (file, env and flags together) as TOML, and exit.")
    var printConfig = false

    /// The settings a config file's [server] table may hold: the flags' names.
    static let serverKeys: Set<String> = [
        "bind", "port", "http-port", "data-dir", "redis", "redis-cluster", "redis-timeout", "limits-when-redis-down", "l1-max-memory", "max-stale", "threads",
        "requirepass", "allow-unauthenticated-remote", "allow-flush", "max-value-size", "maxclients", "client-output-buffer-limit", "maxmemory-clients", "timeout", "fsync",
        "l2-max-bytes", "sem-max-namespaces", "sem-max-entries", "sem-offload-entries", "sem-verifier", "sem-max-memory", "log-level",
        "log-format",
    ]

    func run() async throws {
        LargeAllocations.returnToTheSystemWhenFreed()
        let env = ProcessInfo.processInfo.environment
        let configPath = config ?? env["SLUICE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file: ConfigFile
        do {
            file = try configPath.map { try ConfigFile.load(path: $0, serverKeys: Self.serverKeys) } ?? ConfigFile()
        } catch {
            throw ValidationError("--config: \(error)")
        }
        // A flag, else its SLUICE_* variable, else the file's [server] entry.
        func setting(_ flag: String?, _ name: String) -> String? {
            flag ?? env["SLUICE_" + name] ?? file.server[name.lowercased().replacingOccurrences(of: "_", with: "-")]
        }

        var config = ServerConfiguration()
        config.policies = file.policies
        if let v = setting(bind, "BIND") { config.host = v }
        if let v = setting(port.map(String.init), "PORT") { config.port = try integer(v, "port") }
        if let v = setting(httpPort.map(String.init), "HTTP_PORT") { config.httpPort = try integer(v, "http-port") }
        if let v = setting(dataDir, "DATA_DIR") { config.dataDirectory = v }
        if let v = setting(redis, "REDIS"), !v.isEmpty { config.redisURL = v }
        config.redisCluster = redisCluster || ["1", "true", "yes"].contains(setting(nil, "REDIS_CLUSTER")?.lowercased() ?? "")
        if let v = setting(redisTimeout.map(String.init), "REDIS_TIMEOUT") {
            let ms = try integer(v, "redis-timeout")
            guard ms >= 10 else { throw ValidationError("--redis-timeout must be at least 10 ms") }
            config.redisTimeoutMilliseconds = Int64(ms)
        }
        if let v = setting(limitsWhenRedisDown, "LIMITS_WHEN_REDIS_DOWN") {
            guard let policy = LimitsWhenRedisDown(rawValue: v.lowercased()) else {
                throw ValidationError("--limits-when-redis-down: '\(v)' is not local, deny or allow")
            }
            config.limitsWhenRedisDown = policy
        }
        if let v = setting(l1MaxMemory, "L1_MAX_MEMORY") { config.l1MaxMemory = try byteSize(v, "l1-max-memory") }
        if let v = setting(maxStale.map(String.init), "MAX_STALE") {
            let ms = try integer(v, "max-stale")
            guard ms >= 0, ms <= 2_592_000_000 else { throw ValidationError("--max-stale must be 0 to 2592000000 ms (30 days)") }
            config.maxStaleMilliseconds = Int64(ms)
        }
        if let v = setting(threads.map(String.init), "THREADS") { config.threads = try integer(v, "threads") }
        config.requirePass = setting(requirepass, "REQUIREPASS").flatMap { $0.isEmpty ? nil : $0 }
        config.allowUnauthenticatedRemote = allowUnauthenticatedRemote
            || ["1", "true", "yes"].contains(setting(nil, "ALLOW_UNAUTHENTICATED_REMOTE")?.lowercased() ?? "")
        config.allowFlush = allowFlush || ["1", "true", "yes"].contains(setting(nil, "ALLOW_FLUSH")?.lowercased() ?? "")
        if let v = setting(maxValueSize, "MAX_VALUE_SIZE") {
            let size = try byteSize(v, "max-value-size")
            guard (1...(1 << 30)).contains(size) else { throw ValidationError("--max-value-size must be 1 byte to 1gb") }
            config.limits = .init(maxBulkLength: size)
        }
        if let v = setting(maxclients.map(String.init), "MAXCLIENTS") { config.maxClients = try integer(v, "maxclients") }
        if let v = setting(clientOutputBufferLimit, "CLIENT_OUTPUT_BUFFER_LIMIT") {
            let parts = v.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard parts.count == 3 else { throw ValidationError("--client-output-buffer-limit: '\(v)' is not '<hard> <soft> <seconds>'") }
            config.clientOutputHardLimit = try byteSize(parts[0], "client-output-buffer-limit")
            config.clientOutputSoftLimit = try byteSize(parts[1], "client-output-buffer-limit")
            config.clientOutputSoftSeconds = try integer(parts[2], "client-output-buffer-limit")
        }
        if let v = setting(maxmemoryClients, "MAXMEMORY_CLIENTS") { config.maxMemoryClients = try byteSize(v, "maxmemory-clients") }
        if let v = setting(timeout.map(String.init), "TIMEOUT") { config.idleTimeoutSeconds = try integer(v, "timeout") }
        if let v = setting(fsync, "FSYNC") { config.fsync = try choice(v, "fsync") }
        if let v = setting(l2MaxBytes, "L2_MAX_BYTES") { config.l2MaxBytes = try byteSize(v, "l2-max-bytes") }
        if let v = setting(semMaxNamespaces.map(String.init), "SEM_MAX_NAMESPACES") { config.semanticMaxNamespaces = try integer(v, "sem-max-namespaces") }
        if let v = setting(semMaxEntries.map(String.init), "SEM_MAX_ENTRIES") { config.semanticMaxTotalEntries = try integer(v, "sem-max-entries") }
        if let v = setting(semOffloadEntries.map(String.init), "SEM_OFFLOAD_ENTRIES") { config.semanticOffloadEntries = try integer(v, "sem-offload-entries") }
        if let v = setting(semVerifier, "SEM_VERIFIER") { config.semanticVerifier = try choice(v, "sem-verifier") }
        if let v = setting(semMaxMemory, "SEM_MAX_MEMORY") { config.semanticMaxMemory = try byteSize(v, "sem-max-memory") }

        let levelName = setting(logLevel, "LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("--log-level: unknown level '\(levelName)'")
        }
        let format = (setting(logFormat, "LOG_FORMAT") ?? "text").lowercased()
        guard format == "text" || format == "json" else {
            throw ValidationError("--log-format: '\(format)' is not text or json")
        }
        if let problem = config.validationError() { throw ValidationError(problem) }
        if printConfig {
            print(ConfigurationPrinter.toml(config, logLevel: level.rawValue, logFormat: format), terminator: "")
            return
        }
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluice")

        // A log pipe whose reader went away must not kill the server (as Redis, it ignores SIGPIPE;
        // sockets never raise it: NIO sends with MSG_NOSIGNAL).
        signal(SIGPIPE, SIG_IGN)
        let signals = EarlyShutdownSignals()  // before the node listens: see the type
        signal(SIGHUP, SIG_IGN)  // a SIGHUP before ReloadSignal is in place is lost, not fatal
        let node = try await SluiceNode.start(configuration: config, logger: logger)
        if !config.policies.isEmpty {
            let p = config.policies
            logger.info("policies loaded", metadata: ["file": "\(configPath ?? "")", "limits": "\(p.limits.count)", "budgets": "\(p.budgets.count)",
                                                      "breakers": "\(p.breakers.count)", "namespaces": "\(p.namespaces.count)"])
        }
        let loaded = Mutex((server: file.server, policies: file.policies))
        let reloads = ReloadSignal { [node, logger] in
            guard let configPath else {
                logger.warning("SIGHUP: no --config file to reload")
                return
            }
            do {
                let fresh = try ConfigFile.load(path: configPath, serverKeys: Self.serverKeys)
                let before = loaded.withLock { $0 }
                if fresh.server != before.server {
                    logger.warning("config reload: [server] settings take effect on restart only", metadata: ["file": "\(configPath)"])
                }
                if fresh.policies.isEmpty && !before.policies.isEmpty {
                    // Legal (an empty file), and also what a file caught half-written looks like.
                    logger.warning("config reload: the file has no policies; every policy is removed", metadata: ["file": "\(configPath)"])
                }
                if let problem = await node.reload(policies: fresh.policies, logger: logger) {
                    throw ConfigFile.Problem(problem)
                }
                loaded.withLock { $0 = (fresh.server, fresh.policies) }
                let p = fresh.policies
                logger.info("policies reloaded", metadata: ["file": "\(configPath)", "limits": "\(p.limits.count)", "budgets": "\(p.budgets.count)",
                                                            "breakers": "\(p.breakers.count)", "namespaces": "\(p.namespaces.count)"])
            } catch {
                logger.error("config reload failed; the policies in force stay", metadata: ["file": "\(configPath)", "error": "\(error)"])
            }
        }
        let group = ServiceGroup(configuration: .init(
            services: node.services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        signals.forward(to: group)
        try await group.run()
        reloads.stop()
        logger.info("sluice stopped")
    }

    /// One of an option's named values, any case.
    func choice<Value: RawRepresentable & CaseIterable>(_ text: String, _ name: String) throws -> Value where Value.RawValue == String {
        guard let value = Value(rawValue: text.lowercased()) else {
            throw ValidationError("--\(name): '\(text)' is not one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func integer(_ text: String, _ name: String) throws -> Int {

        guard let n = Int(text) else { throw ValidationError("--\(name): '\(text)' is not a whole number") }
        return n
    }

    /// "256mb", "1gb", "512k", "1048576".
    func byteSize(_ text: String, _ name: String) throws -> Int {
        let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("gb", 1 << 30), ("g", 1 << 30), ("mb", 1 << 20), ("m", 1 << 20), ("kb", 1 << 10), ("k", 1 << 10), ("b", 1)]
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            if let n = Int(lower.dropLast(suffix.count)), n >= 0 {
                let (bytes, overflow) = n.multipliedReportingOverflow(by: factor)
                guard !overflow else { throw ValidationError("--\(name): '\(text)' is too large") }
                return bytes
            }
            throw ValidationError("--\(name): '\(text)' is not a size like 256mb")
        }
        guard let n = Int(lower), n >= 0 else { throw ValidationError("--\(name): '\(text)' is not a size like 256mb") }
        return n
    }
}
