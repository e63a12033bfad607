import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceDomain

/// The listening side: binds, hands each connection a ``ConnectionHandler``, and on graceful
/// shutdown stops accepting and lets open connections finish their current batch.
public final class Listener: Service, Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel

    /// Binds and starts accepting. Use ``run()`` (as a `Service`) or ``stop()``.
    static func start(configuration: ServerConfiguration, table: CommandTable, counters: ServerCounters,
                      clock: any TimeSource, logger: Logger, backend: String) async throws -> Listener {
        let threads = configuration.threads > 0 ? configuration.threads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let limits = configuration.limits
        let requiresAuth = configuration.requirePass != nil
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                            table: table, counters: counters, clock: clock, limits: limits, requiresAuth: requiresAuth, logger: logger))
                    }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
            logger.info("sluice listening", metadata: [
                "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                "threads": "\(threads)",
                "l2": "\(backend)",
            ])
            return Listener(group: group, channel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    init(group: MultiThreadedEventLoopGroup, channel: any Channel) {
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
