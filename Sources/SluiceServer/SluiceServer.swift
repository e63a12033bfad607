import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The listening side: binds, hands each connection a ``ConnectionHandler``, and on graceful
/// shutdown stops accepting and lets open connections finish their current batch.
public final class SluiceServer: Service, Sendable {
    public let environment: ServerEnvironment
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel

    /// Binds and starts accepting. Use ``run()`` (as a `Service`) or ``stop()``.
    public static func start(environment: ServerEnvironment) async throws -> SluiceServer {
        let config = environment.configuration
        let threads = config.threads > 0 ? config.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let table = CommandTable.standard(environment)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(environment: environment, table: table))
                    }
                }
                .bind(host: config.host, port: config.port)
                .get()
            environment.logger.info("sluice listening", metadata: [
                "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                "threads": "\(threads)",
                "l2": "\(environment.cache.l2?.kind ?? "none")",
            ])
            return SluiceServer(environment: environment, group: group, channel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    init(environment: ServerEnvironment, group: MultiThreadedEventLoopGroup, channel: any Channel) {
        self.environment = environment
        self.group = group
        self.channel = channel
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.channel.close(promise: nil)
        }
        await stop()
    }

    /// Stops accepting, closes the listener and the event loops.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}
