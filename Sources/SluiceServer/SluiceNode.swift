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

    public static func start(
        configuration: ServerConfiguration,
        clock: any WallClock = SystemClock(),
        logger: Logger = Logger(label: "sluice")
    ) async throws -> SluiceNode {
        if let problem = configuration.validationError() {
            throw ConfigurationError(message: problem)
        }
        var store: SQLiteStore?
        if let directory = configuration.dataDirectory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try SQLiteStore(path: directory + "/sluice.db", logger: logger)
        }
        let keyspace = Keyspace(l1Capacity: configuration.l1MaxMemory, shardCount: configuration.l1Shards, tracksL2: store != nil)
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
        let environment = ServerEnvironment(configuration: configuration, cache: TieredCache(keyspace: keyspace, l2: store),
                                            clock: clock, logger: logger)
        let server = try await SluiceServer.start(environment: environment)
        return SluiceNode(environment: environment, server: server, store: store)
    }

    init(environment: ServerEnvironment, server: SluiceServer, store: SQLiteStore?) {
        self.environment = environment
        self.server = server
        self.store = store
    }

    public var port: Int { server.port }

    /// In shutdown order last-to-first: the listener stops first, the store flushes last.
    public var services: [any Service] {
        var services: [any Service] = []
        if let store { services.append(StoreService(store: store)) }
        services.append(HousekeepingService(environment: environment, store: store))
        services.append(server)
        return services
    }

    /// Stops listening, then flushes and closes the store.
    public func shutdown() async {
        await server.stop()
        await store?.close()
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
