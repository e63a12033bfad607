import NIOPosix
import ServiceLifecycle

/// Keeps the event loops and the search threads running while the node runs; stops them last,
/// after the listener has answered its connections and the stores have flushed.
struct EventLoopService: Service {
    let group: MultiThreadedEventLoopGroup
    let searchPool: NIOThreadPool

    func run() async throws {
        try? await gracefulShutdown()
        try? await searchPool.shutdownGracefully()
        try? await group.shutdownGracefully()
    }
}
