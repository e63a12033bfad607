import Logging
import NIOCore
import NIOPosix
import SluiceBackends
import SluiceDomain

/// Sluice's commands over memory alone — L1, this process's limits and breakers, the semantic
/// index; no file, no Redis, no sockets — wired as ``SluiceNode`` wires the embedded mode. For
/// driving the real dispatcher where a listener would be in the way: the command-sequence
/// fuzzer, and programs that embed Sluice's protocol in a pipeline of their own.
public final class MemoryOnlyServer: Sendable {
    let settings: ConnectionHandler.Settings
    let keyspace: Keyspace
    let lanes: [NIOThreadPool]
    let ownsLanes: Bool

    /// `lanes`: threads for large semantic namespaces (one is started and owned when nil).
    public init(configuration: ServerConfiguration, clock: any TimeSource, logger: Logger = Logger(label: "sluice"),
                embedder: TokenEmbedder? = nil, lanes: [NIOThreadPool]? = nil) {
        var configuration = configuration
        configuration.dataDirectory = nil
        configuration.redisURL = nil
        keyspace = Keyspace(l1Capacity: configuration.l1MaxMemory, shardCount: min(configuration.l1Shards, 4), tracksL2: false)
        ownsLanes = lanes == nil
        self.lanes = lanes ?? [NIOThreadPool(numberOfThreads: 1)]
        if ownsLanes { for lane in self.lanes { lane.start() } }
        let cache = EmbeddedExactCache(keyspace: keyspace, store: nil)
        let capabilities = SluiceNode.Capabilities(
            cache: cache,
            keys: EmbeddedKeyOperations(cache: cache, maxValueBytes: configuration.limits.maxBulkLength, scanCursors: configuration.maxScanCursors),
            limits: EmbeddedRateLimits(limiter: RateLimiter(maxKeys: configuration.maxLimitKeys, reservationTTL: configuration.reservationTTLMilliseconds,
                                                            shardCount: 4), clock: clock),
            breakers: EmbeddedBreakers(registry: BreakerRegistry(maxBreakers: configuration.maxBreakers)),
            semantic: EmbeddedSemanticStore(
                cache: SemanticCache(defaultMinScore: configuration.semanticMinScore, defaultMaxEntries: configuration.semanticMaxEntries,
                                     maxNamespaces: configuration.semanticMaxNamespaces, maxTotalEntries: configuration.semanticMaxTotalEntries,
                                     maxTotalBytes: configuration.semanticMaxMemory,
                                     verifier: configuration.semanticVerifier == .wordnet ? PromptVerifier.builtIn : nil,
                                     rewordingEmbedder: embedder?.version),
                store: nil, lanes: self.lanes, offloadEntries: configuration.semanticOffloadEntries))
        let counters = ServerCounters(clientOutputLimit: configuration.maxMemoryClients)
        let table = SluiceNode.commandTable(capabilities, embedder: embedder, counters: counters, configuration: configuration,
                                            startedAt: clock.nowMilliseconds(), logger: logger)
        settings = ConnectionHandler.Settings(
            table: table, counters: counters, clock: clock, logger: logger, limits: configuration.limits,
            requiresAuth: configuration.requirePass != nil, maxClients: configuration.maxClients,
            outputHardLimit: configuration.clientOutputHardLimit, outputSoftLimit: configuration.clientOutputSoftLimit,
            outputSoftSeconds: configuration.clientOutputSoftSeconds)
    }

    /// A new connection's handler, for a channel of the caller's.
    public func makeConnectionHandler() -> any ChannelHandler {
        ConnectionHandler(settings: settings)
    }

    /// A broken rule of the L1's books, if any (fuzzers check after every input).
    public func invariantViolation() -> String? {
        var problem: String?
        keyspace.forEachShard { shard in
            if problem == nil { problem = shard.l1.invariantViolation() }
        }
        return problem
    }

    public func shutdown() {
        if ownsLanes { for lane in lanes { try? lane.syncShutdownGracefully() } }
    }
}
