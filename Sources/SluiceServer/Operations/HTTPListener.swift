import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The operating port (`--http-port`, default 7380): `/metrics`, `/health`, `/ready`, the
/// dashboard and its JSON. Same bind address and password as the protocol port. Its own small
/// bounds: at most ``maxConnections`` at once, requests without bodies, idle connections closed.
public final class HTTPListener: Service, Sendable {
    public static let maxConnections = 128
    let channel: any Channel
    let logger: Logger

    static func start(host: String, port: Int, group: any EventLoopGroup, routes: HTTPRoutes, logger: Logger) async throws -> HTTPListener {
        let shared = HTTPHandler.Shared(routes: routes)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 128 * 1024, high: 512 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Reads stop while responses wait to be sent: a client that pipelines requests
                    // and never reads cannot make the node hold their responses without bound.
                    try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPHandler(shared: shared))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("http listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return HTTPListener(channel: channel, logger: logger)
    }

    init(channel: any Channel, logger: Logger) {
        self.channel = channel
        self.logger = logger
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.channel.close(promise: nil)
        }
    }

    public func stop() async {
        try? await channel.close()
    }
}
