import Foundation
import Logging
import ServiceLifecycle
import SluiceBackends
import SluiceDomain

/// One running Sluice: the store, the keyspace restored from it, the listener and the
/// housekeeping, wired from a ``ServerConfiguration``. The executable runs its ``services`` in
/// a `ServiceGroup`; tests start and stop nodes in-process.
public final class SluiceNode: Sendable {
    public let environment: ServerEnvironment
    public let server: SluiceServer
    public let store: SQLiteStore?
    public let redis: RedisCacheStore?

    public static func start(
        configuration: ServerConfiguration,
        clock: any WallClock = SystemClock(),
        logger: Logger = Logger(label: "sluice")
    ) async throws -> SluiceNode {
        if let problem = configuration.validationError() {
            throw ConfigurationError(message: problem)
        }
        var store: SQLiteStore?
        var redis: RedisCacheStore?
        if let url = configuration.redisURL {
            let endpoint = try RedisEndpoint.parse(url).get()
            redis = RedisCacheStore(client: RedisClient(endpoint: endpoint, commandTimeout: .milliseconds(configuration.redisTimeoutMilliseconds),
                                                        logger: logger))
            logger.info("shared mode: L2 in Redis", metadata: ["redis": "\(endpoint)"])
        } else if let directory = configuration.dataDirectory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try SQLiteStore(path: directory + "/sluice.db", logger: logger)
        }
        let keyspace = Keyspace(l1Capacity: configuration.l1MaxMemory, shardCount: configuration.l1Shards, tracksL2: store != nil)
        // Other instances' writes and deletes drop our L1 copies.
        redis?.subscribe(logger: logger, drop: { key in
            let hash = keyspace.hasher.hash(key)
            keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
        }, dropAll: {
            keyspace.forEachShard { $0.clearL1() }
        })
        if let store {
            // The directory of what the L2 holds; values stay on disk until read.
            var restored = 0
            try store.forEachLiveKey(now: clock.nowMilliseconds()) { key, expiresAt in
                let hash = keyspace.hasher.hash(key)
                keyspace.withShard(hash: hash) { $0.restore(hash: hash, expiresAt: expiresAt) }
                restored += 1
            }
            logger.info("embedded L2 opened", metadata: ["path": "\(store.path)", "keys": "\(restored)"])
        }
        let l2: (any L2Store)? = redis ?? store
        let semantic = SemanticCache(defaultMinScore: configuration.semanticMinScore, defaultMaxEntries: configuration.semanticMaxEntries)
        // Shared mode: follow every instance's SEM changes (replayed from the start of the stream).
        let semanticLog = redis.map { r in
            SharedSemanticLog(client: r.client, logger: logger) { change in SemanticSync.apply(change, to: semantic) }
        }
        let environment = ServerEnvironment(configuration: configuration, cache: TieredCache(keyspace: keyspace, l2: l2),
                                            clock: clock, logger: logger, semantic: semantic, semanticLog: semanticLog)
        if let store {
            // Semantic entries, oldest first (so a namespace's size bound keeps the newest).
            var reloaded = 0
            try store.forEachSemanticEntry(now: clock.nowMilliseconds()) { change in
                SemanticSync.apply(change, to: semantic)
                reloaded += 1
            }
            if reloaded > 0 { logger.info("semantic entries reloaded", metadata: ["count": "\(reloaded)"]) }
        }
        let server: SluiceServer
        do {
            server = try await SluiceServer.start(environment: environment)
        } catch {
            semanticLog?.close()
            redis?.close()
            await store?.close()
            throw error
        }
        return SluiceNode(environment: environment, server: server, store: store, redis: redis)
    }

    init(environment: ServerEnvironment, server: SluiceServer, store: SQLiteStore?, redis: RedisCacheStore?) {
        self.environment = environment
        self.server = server
        self.store = store
        self.redis = redis
    }

    public var port: Int { server.port }

    /// In shutdown order last-to-first: the listener stops first, the store flushes last.
    public var services: [any Service] {
        var services: [any Service] = []
        if let store { services.append(StoreService(store: store)) }
        if let redis { services.append(RedisService(redis: redis, semanticLog: environment.semanticLog)) }
        services.append(HousekeepingService(environment: environment, store: store))
        services.append(server)
        return services
    }

    /// Stops listening, then flushes and closes the store.
    public func shutdown() async {
        await server.stop()
        try? await environment.searchPool.shutdownGracefully()
        await store?.close()
        environment.semanticLog?.close()
        redis?.close()
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Keeps the store open while the node runs; flushes and closes it on shutdown.
struct StoreService: Service {
    let store: SQLiteStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}

/// Keeps the Redis connections open while the node runs; closes them on shutdown.
struct RedisService: Service {
    let redis: RedisCacheStore
    let semanticLog: SharedSemanticLog?

    func run() async throws {
        try? await gracefulShutdown()
        semanticLog?.close()
        redis.close()
    }
}

/// Applies a recorded SEM change (from SQLite at start-up, or from the shared stream).
enum SemanticSync {
    static func apply(_ change: SemanticChange, to cache: SemanticCache) {
        switch change {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt):
            _ = cache.write(ns) {
                $0.set(prompt, response: response, vector: vector, embedder: embedder, scope: scope, createdAt: createdAt, expiresAt: expiresAt)
            }
        case .delete(let ns, let scope, let prompt):
            _ = cache.write(ns, create: false) { $0.delete(prompt, scope: scope) }
        case .drop(let ns):
            _ = cache.drop(ns)
        }
    }
}
