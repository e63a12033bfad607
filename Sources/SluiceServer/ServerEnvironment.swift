import Logging
import NIOCore
import NIOPosix
import SluiceBackends
import SluiceDomain
import Synchronization

/// Shared, long-lived state every connection's commands use.
public final class ServerEnvironment: Sendable {
    public let configuration: ServerConfiguration
    public let cache: TieredCache
    public let limiter: RateLimiter
    /// Shared mode: limits decided in Redis for every instance.
    public let sharedLimiter: SharedRateLimiter?
    public let breakers: BreakerRegistry
    /// Shared mode: breakers kept in Redis for every instance.
    public let sharedBreakers: SharedBreakers?
    public let semantic: SemanticCache
    /// The built-in embedder (nil if its table failed to load: SEM.* then needs VEC).
    public let embedder: TokenEmbedder?
    public let clock: any WallClock
    public let logger: Logger
    public let startedAt: Int64
    public let counters = ServerCounters()

    /// Threads for work too long for an event loop (searches of large SEM namespaces).
    public let searchPool: NIOThreadPool

    /// Shared mode: the stream every instance's SEM changes go through.
    public let semanticLog: SharedSemanticLog?

    public init(configuration: ServerConfiguration, cache: TieredCache, clock: any WallClock = SystemClock(), logger: Logger = Logger(label: "sluice"),
                semantic: SemanticCache? = nil, semanticLog: SharedSemanticLog? = nil) {
        self.configuration = configuration
        self.cache = cache
        self.limiter = RateLimiter(maxKeys: configuration.maxLimitKeys, reservationTTL: configuration.reservationTTLMilliseconds)
        self.sharedLimiter = cache.shared.map {
            SharedRateLimiter(client: $0.client, reservationTTL: configuration.reservationTTLMilliseconds)
        }
        self.breakers = BreakerRegistry(maxBreakers: configuration.maxBreakers)
        self.sharedBreakers = cache.shared.map { SharedBreakers(client: $0.client) }
        self.semantic = semantic ?? SemanticCache(defaultMinScore: configuration.semanticMinScore, defaultMaxEntries: configuration.semanticMaxEntries)
        self.semanticLog = semanticLog
        self.searchPool = NIOThreadPool(numberOfThreads: 2)
        self.searchPool.start()
        do {
            self.embedder = try TokenEmbedder.builtIn()
        } catch {
            logger.error("built-in embedder unavailable; SEM.* needs VEC", metadata: ["error": "\(error)"])
            self.embedder = nil
        }
        self.clock = clock
        self.logger = logger
        self.startedAt = clock.nowMilliseconds()
    }

    /// Keeps a SEM change beyond this process: the Redis stream in shared mode, the SQLite file
    /// in embedded mode.
    public func recordSemantic(_ change: SemanticChange) {
        if let semanticLog {
            semanticLog.publish(change)
        } else if let store = cache.l2 as? SQLiteStore {
            store.enqueue(change)
        }
    }

    /// Lease tokens: random, so a token cannot be guessed from another.
    public func newLeaseToken() -> UInt64 {
        UInt64.random(in: 1 ... UInt64.max)
    }
}

/// Process-wide counters, bumped once per read batch (not per request) where they can be.
public final class ServerCounters: Sendable {
    public let connectedClients = Atomic<Int>(0)
    public let totalConnections = Atomic<Int>(0)
    public let commandsProcessed = Atomic<Int>(0)
    public let rejectedRequests = Atomic<Int>(0)
    public let protocolErrors = Atomic<Int>(0)
    /// Shared mode: limit decisions made without Redis (per --limits-when-redis-down).
    public let limitFallbacks = Atomic<Int>(0)
    let nextClientID = Atomic<Int>(1)

    public init() {}

    func newClientID() -> Int {
        nextClientID.add(1, ordering: .relaxed).oldValue
    }
}
