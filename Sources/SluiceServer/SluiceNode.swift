import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceBackends
import SluiceDomain

/// One running Sluice, wired from a ``ServerConfiguration``: this is the one place that knows
/// which implementation of each capability runs (embedded, or Redis with its Redis-down
/// fallback), starts the threads and pools, and hands every command group only what it uses.
/// The executable runs its ``services`` in a `ServiceGroup`; tests start and stop nodes in-process.
public final class SluiceNode: Sendable {
    public let listener: Listener
    /// The operating port (nil: `--http-port 0`).
    public let http: HTTPListener?
    public let exporter: MetricsExporter
    /// The named policies in force.
    public let policies: PolicyBook
    let applier: PolicyApplier
    /// Samples for the dashboard (nil without the HTTP port).
    let dashboard: DashboardService?
    public let counters: ServerCounters
    /// The event loops: connections, and every future the backends complete.
    let group: MultiThreadedEventLoopGroup
    let housekeeping: HousekeepingService
    let store: SQLiteStore?
    let redis: RedisParts?
    /// Thread pools, stopped last: the single-thread lanes for operations on large semantic
    /// namespaces, and the operating port's (scrapes, the dashboard).
    let lanes: [NIOThreadPool]

    /// The shared-mode pieces that own threads and connections.
    struct RedisParts: Sendable {
        let client: RedisClient
        let invalidations: RedisInvalidations
        let semantic: RedisSemanticStore
        let slots: RedisSlots
    }

    /// The capabilities, whichever implementation runs them.
    struct Capabilities {
        var cache: any ExactCache
        var keys: any KeyOperations
        var limits: any RateLimits
        var breakers: any Breakers
        var semantic: any SemanticStore
    }

    public static func start(
        configuration: ServerConfiguration,
        clock: any TimeSource = SystemClock(),
        logger: Logger = Logger(label: "sluice")
    ) async throws -> SluiceNode {
        if let problem = configuration.validationError() {
            throw ConfigurationError(message: problem)
        }
        let startedAt = clock.nowMilliseconds()
        // Created first, while file descriptors are plentiful: nothing later creates event loops.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads > 0 ? configuration.threads : System.coreCount)
        let maxClients = FileDescriptorLimit.raise(toHold: configuration.maxClients, reserved: ServerConfiguration.reservedFileDescriptors,
                                                   logger: logger)
        let lanes = (0..<2).map { _ in NIOThreadPool(numberOfThreads: 1) }
        for lane in lanes { lane.start() }
        // Scrapes and the dashboard read every counter: a thread of their own, so a busy
        // semantic lane never delays a health probe.
        let operationsPool = NIOThreadPool(numberOfThreads: 1)
        operationsPool.start()
        // Inverted lists of large semantic namespaces are built here: seconds of k-means must
        // not hold up a lane (and every namespace behind it).
        let indexPool = NIOThreadPool(numberOfThreads: 1)
        indexPool.start()
        let limiter = RateLimiter(maxKeys: configuration.maxLimitKeys, reservationTTL: configuration.reservationTTLMilliseconds)
        let registry = BreakerRegistry(maxBreakers: configuration.maxBreakers)
        let embedder = Self.loadEmbedder(logger: logger)
        let semanticCache = SemanticCache(defaultMinScore: configuration.semanticMinScore, defaultMaxEntries: configuration.semanticMaxEntries,
                                          maxNamespaces: configuration.semanticMaxNamespaces, maxTotalEntries: configuration.semanticMaxTotalEntries,
                                     maxTotalBytes: configuration.semanticMaxMemory,
                                     verifier: configuration.semanticVerifier == .wordnet ? PromptVerifier.builtIn : nil,
                                     rewordingEmbedder: embedder?.version,
                                     background: { work in indexPool.submit { if $0 == .active { work() } } })

        var store: SQLiteStore?
        var redis: RedisParts?
        let keyspace: Keyspace
        var capabilities: Capabilities
        if let url = configuration.redisURL {
            // Shared mode: Redis is the authority; each capability falls back to this process
            // while Redis cannot answer.
            let endpoints = try RedisEndpoint.parseList(url).get()
            let endpoint = endpoints[0]
            let timeout = Duration.milliseconds(configuration.redisTimeoutMilliseconds)
            let cluster = configuration.redisCluster || endpoints.count > 1 || Self.detectCluster(endpoint, logger: logger)
            let client = cluster ? RedisClient(cluster: endpoints, commandTimeout: timeout, logger: logger)
                                 : RedisClient(endpoint: endpoint, commandTimeout: timeout, logger: logger)
            for script in LuaScripts.all { script.load(client, on: group.any()) }
            keyspace = Keyspace(l1Capacity: configuration.l1MaxMemory, shardCount: configuration.l1Shards, tracksL2: false,
                                staleRetention: configuration.maxStaleMilliseconds)
            let invalidations = RedisInvalidations(client: client, logger: logger)
            let cache = RedisExactCache(keyspace: keyspace, client: client, invalidations: invalidations)
            cache.startInvalidations(logger: logger)
            let localSemantic = EmbeddedSemanticStore(cache: semanticCache, store: nil, lanes: lanes,
                                                      offloadEntries: configuration.semanticOffloadEntries)
            let semantic = RedisSemanticStore(local: localSemantic, client: client, logger: logger, time: clock)
            let policy = RedisDownPolicy(limits: configuration.limitsWhenRedisDown, logger: logger)
            let localLimits = EmbeddedRateLimits(limiter: limiter, clock: clock)
            let localBreakers = EmbeddedBreakers(registry: registry)
            let sharedLimits = RedisRateLimits(client: client, reservationTTL: configuration.reservationTTLMilliseconds, local: localLimits, time: clock)
            sharedLimits.slots.start(on: group.any())
            capabilities = Capabilities(
                cache: FallbackExactCache(primary: cache, keyspace: keyspace, policy: policy),
                keys: FallbackKeyOperations(primary: RedisKeyOperations(cache: cache), policy: policy),
                limits: FallbackRateLimits(primary: sharedLimits, local: localLimits, policy: policy),
                breakers: FallbackBreakers(primary: RedisBreakers(client: client, local: localBreakers), local: localBreakers, policy: policy),
                semantic: FallbackSemanticStore(primary: semantic, local: localSemantic, policy: policy))
            redis = RedisParts(client: client, invalidations: invalidations, semantic: semantic, slots: sharedLimits.slots)
            logger.info("shared mode: L2 in Redis", metadata: ["redis": "\(endpoint)", "cluster": "\(cluster)"])
        } else {
            if let directory = configuration.dataDirectory {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                do {
                    store = try SQLiteStore(path: directory + "/sluice.db", fsync: configuration.fsync, maxBytes: configuration.l2MaxBytes,
                                            maxPendingBytes: configuration.l2MaxPendingBytes, logger: logger)
                } catch {
                    throw ConfigurationError(message: "--data-dir \(directory): cannot open sluice.db for writing (\(error)); is the directory writable?")
                }
            }
            keyspace = Keyspace(l1Capacity: configuration.l1MaxMemory, shardCount: configuration.l1Shards, tracksL2: store != nil,
                                staleRetention: configuration.maxStaleMilliseconds)
            if let store { try Self.restore(keyspace: keyspace, semantic: semanticCache, from: store, now: clock.nowMilliseconds(), logger: logger) }
            let cache = EmbeddedExactCache(keyspace: keyspace, store: store)
            cache.followStoreEvictions()
            capabilities = Capabilities(
                cache: cache,
                keys: EmbeddedKeyOperations(cache: cache, maxValueBytes: configuration.limits.maxBulkLength,
                                            scanCursors: configuration.maxScanCursors),
                limits: EmbeddedRateLimits(limiter: limiter, clock: clock),
                breakers: EmbeddedBreakers(registry: registry),
                semantic: EmbeddedSemanticStore(cache: semanticCache, store: store, lanes: lanes,
                                                offloadEntries: configuration.semanticOffloadEntries))
        }

        // Every breaker answer watched for transitions (logged, counted, shown), in either mode.
        let transitions = BreakerTransitions()
        capabilities.breakers = WatchedBreakers(capabilities.breakers, transitions: transitions, logger: logger,
                                                wallClock: { clock.timestamp().wall })
        let counters = ServerCounters(clientOutputLimit: configuration.maxMemoryClients)
        let policies = PolicyBook(configuration.policies)
        let table = commandTable(capabilities, embedder: embedder, counters: counters, configuration: configuration, startedAt: startedAt,
                                 logger: logger, policies: policies)
        let report = StatsReport(cache: capabilities.cache, limits: capabilities.limits, breakers: capabilities.breakers,
                                 semantic: capabilities.semantic, counters: counters, configuration: configuration, startedAt: startedAt)
        let exporter = MetricsExporter(report: report, policies: policies, transitions: transitions)
        let commandMetrics = exporter.commandMetrics(for: table, loops: Array(group.makeIterator()))
        let feed = DashboardFeed(report: report, metrics: commandMetrics, policies: policies, transitions: transitions, clock: clock)
        let settings = ConnectionHandler.Settings(
            table: table, counters: counters, clock: clock, logger: logger, limits: configuration.limits,
            requiresAuth: configuration.requirePass != nil, maxClients: maxClients,
            outputHardLimit: configuration.clientOutputHardLimit, outputSoftLimit: configuration.clientOutputSoftLimit,
            outputSoftSeconds: configuration.clientOutputSoftSeconds, metrics: commandMetrics)
        // The config file's breaker and namespace settings are in force before the first client.
        let applier = PolicyApplier(breakers: capabilities.breakers, semantic: capabilities.semantic, clock: clock)
        await applier.apply(configuration.policies, on: group.any(), logger: logger)
        let listener: Listener
        var http: HTTPListener?
        do {
            listener = try await Listener.start(configuration: configuration, group: group, settings: settings,
                                                backend: capabilities.cache.statistics(now: startedAt).backend)
            if configuration.httpPort > 0 {
                let routes = HTTPRoutes(exporter: exporter, report: report, feed: feed,
                                        password: configuration.requirePass.map(PasswordCheck.init), clock: clock, pool: operationsPool,
                                        failureDelayMilliseconds: configuration.authFailureDelayMilliseconds)
                do {
                    http = try await HTTPListener.start(host: configuration.host, port: configuration.httpPort, group: group, routes: routes,
                                                        logger: logger)
                } catch {
                    await listener.stop()
                    throw ConfigurationError(message: "--http-port \(configuration.httpPort): cannot listen (\(error)); another process may hold it (--http-port 0 turns it off)")
                }
            }
        } catch {
            redis?.semantic.close()
            redis?.invalidations.close()
            redis?.slots.close()
            redis?.client.close()
            await store?.close()
            for lane in lanes + [operationsPool, indexPool] { try? await lane.shutdownGracefully() }
            try? await group.shutdownGracefully()
            throw error
        }
        let housekeeping = HousekeepingService(keyspace: keyspace, limiter: limiter, semantic: semanticCache, store: store, clock: clock,
                                               logger: logger, intervalMilliseconds: configuration.sweepIntervalMilliseconds,
                                               eventLoop: group.any(), counters: counters)
        let node = SluiceNode(listener: listener, http: http, counters: counters, group: group, housekeeping: housekeeping, store: store,
                              redis: redis, lanes: lanes + [operationsPool, indexPool], exporter: exporter, policies: policies,
                              dashboard: http == nil ? nil : DashboardService(feed: feed), applier: applier)
        return node
    }

    /// Replaces the named policies (SIGHUP): RL.* use the new ones from the next request on, and
    /// breakers and namespaces named in them get their settings. Invalid policies change
    /// nothing; the answer says why.
    public func reload(policies: PolicySet, logger: Logger) async -> String? {
        if let problem = policies.problem() { return problem }
        self.policies.replace(with: policies)
        await applier.apply(policies, on: group.any(), logger: logger)
        return nil
    }

    init(listener: Listener, http: HTTPListener?, counters: ServerCounters, group: MultiThreadedEventLoopGroup, housekeeping: HousekeepingService,
         store: SQLiteStore?, redis: RedisParts?, lanes: [NIOThreadPool], exporter: MetricsExporter, policies: PolicyBook,
         dashboard: DashboardService?, applier: PolicyApplier) {
        self.dashboard = dashboard
        self.listener = listener
        self.policies = policies
        self.applier = applier
        self.http = http
        self.exporter = exporter
        self.counters = counters
        self.group = group
        self.housekeeping = housekeeping
        self.store = store
        self.redis = redis
        self.lanes = lanes
    }

    /// Every command group, each given only the capabilities it uses.
    static func commandTable(_ c: Capabilities, embedder: TokenEmbedder?, counters: ServerCounters, configuration: ServerConfiguration,
                             startedAt: Int64, logger: Logger, policies: PolicyBook = PolicyBook()) -> CommandTable {
        let report = StatsReport(cache: c.cache, limits: c.limits, breakers: c.breakers, semantic: c.semantic, counters: counters,
                                 configuration: configuration, startedAt: startedAt)
        return CommandTable(groups: [
            ConnectionCommands(password: configuration.requirePass.map(PasswordCheck.init), counters: counters, logger: logger,
                               failureDelay: configuration.authFailureDelayMilliseconds),
            ServerCommands(report: report, configuration: configuration),
            ExactCacheCommands(cache: c.cache, keys: c.keys),
            StringCommands(cache: c.cache, keys: c.keys, maxReplyBytes: configuration.clientOutputHardLimit),
            KeyCommands(cache: c.cache, keys: c.keys, allowFlush: configuration.allowFlush),
            HashCommands(keys: c.keys, maxReplyBytes: configuration.clientOutputHardLimit),
            TransactionCommands(maxReplyBytes: configuration.clientOutputHardLimit),
            LLMCommands(cache: c.cache, semantic: c.semantic, embedder: embedder, maxLease: configuration.maxLeaseMilliseconds, counters: counters.llm,
                        maxKeyBytes: configuration.limits.maxBulkLength),
            RichCacheCommands(cache: c.cache, maxLease: configuration.maxLeaseMilliseconds),
            RateLimitCommands(limits: c.limits, policies: policies, logger: logger),
            BreakerCommands(breakers: c.breakers),
            SemanticCommands(store: c.semantic, embedder: embedder, cache: c.cache),
        ])
    }

    /// The built-in embedder; without its table SEM.* still works with client vectors (VEC).
    static func loadEmbedder(logger: Logger) -> TokenEmbedder? {
        do {
            return try TokenEmbedder.builtIn()
        } catch {
            logger.error("built-in embedder unavailable; SEM.* needs VEC", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Whether the one Redis named is a cluster node (`INFO cluster`). A Redis that is not up yet
    /// (started together with Sluice) is asked again for up to five seconds; after that Sluice
    /// runs as for one Redis and says how to force cluster mode.
    static func detectCluster(_ endpoint: RedisEndpoint, logger: Logger) -> Bool {
        for attempt in 0..<10 {
            if let known = RedisClient.isCluster(endpoint) { return known }
            if attempt == 0 { logger.notice("waiting for Redis to say whether it is a cluster", metadata: ["redis": "\(endpoint)"]) }
            Thread.sleep(forTimeInterval: 0.5)
        }
        logger.warning("Redis did not answer at start-up: running as for one Redis (give --redis-cluster if it is a cluster node)",
                       metadata: ["redis": "\(endpoint)"])
        return false
    }

    /// At start-up in embedded mode: the directory of what the file holds (values stay on disk
    /// until read), and the semantic entries, oldest first (so a namespace's size bound keeps
    /// the newest).
    static func restore(keyspace: Keyspace, semantic: SemanticCache, from store: SQLiteStore, now: Int64, logger: Logger) throws {
        var restored = 0
        // Rows expired within the stale retention are known too (for CACHE.GET ... STALE).
        try store.forEachLiveKey(now: now.subtractingSaturating(keyspace.staleRetention)) { key, expiresAt in
            let hash = keyspace.hasher.hash(key)
            keyspace.withShard(hash: hash) { $0.restore(hash: hash, expiresAt: expiresAt) }
            restored += 1
        }
        logger.info("embedded L2 opened", metadata: ["path": "\(store.path)", "keys": "\(restored)"])
        var reloaded = 0
        try store.forEachSemanticEntry(now: now) { change in
            // Oldest first: entries past a namespace's bound are evicted again, their rows with them.
            for eviction in change.apply(to: semantic) { store.enqueue(eviction) }
            reloaded += 1
        }
        if reloaded > 0 { logger.info("semantic entries reloaded", metadata: ["count": "\(reloaded)"]) }
    }

    public var port: Int { listener.port }

    /// In shutdown order last-to-first: the listener stops first, the store flushes last.
    public var services: [any Service] {
        var services: [any Service] = []
        services.append(EventLoopService(group: group, lanes: lanes))
        if let store { services.append(StoreService(store: store)) }
        if let redis { services.append(RedisService(parts: redis)) }
        services.append(housekeeping)
        if let dashboard { services.append(dashboard) }
        services.append(listener)
        if let http { services.append(http) }
        return services
    }

    /// Stops listening, then flushes and closes the store and the Redis connections.
    public func shutdown() async {
        await http?.stop()
        await listener.stop()
        for lane in lanes { try? await lane.shutdownGracefully() }
        await store?.close()
        redis?.close()
        try? await group.shutdownGracefully()
    }
}

extension SluiceNode.RedisParts {
    func close() {
        semantic.close()
        invalidations.close()
        slots.close()
        client.close()
    }
}
