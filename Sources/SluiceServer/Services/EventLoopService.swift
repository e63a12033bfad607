import NIOPosix
import ServiceLifecycle

/// Keeps the event loops and the semantic lanes running while the node runs; stops them last,
/// after the listener has answered its connections and the stores have flushed.
struct EventLoopService: Service {
    let group: MultiThreadedEventLoopGroup
    let lanes: [NIOThreadPool]

    func run() async throws {
        try? await gracefulShutdown()
        for lane in lanes { try? await lane.shutdownGracefully() }
        try? await group.shutdownGracefully()
    }
}
