import ServiceLifecycle
import SluiceBackends

/// Keeps the SQLite store open while the node runs; flushes and closes it on shutdown.
struct StoreService: Service {
    let store: SQLiteStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}
