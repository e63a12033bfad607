import ServiceLifecycle

/// Keeps the Redis connections (commands, invalidations, the semantic stream) open while the
/// node runs; closes them on shutdown.
struct RedisService: Service {
    let parts: SluiceNode.RedisParts

    func run() async throws {
        try? await gracefulShutdown()
        parts.close()
    }
}
