import Logging
import NIOCore
import NIOExtras
import NIOPosix
import ServiceLifecycle
import SluiceDomain
import Synchronization

/// The listening side: binds, hands each connection a ``ConnectionHandler``, and on graceful
/// shutdown stops accepting and lets every open connection answer what it has read, then close.
public final class Listener: Service, Sendable {
    let channel: any Channel
    /// Released once the listener stopped: its deinit completes a promise on an event loop,
    /// which must still be running then.
    let quiesce: Mutex<ServerQuiescingHelper?>
    let logger: Logger
    /// How long a graceful shutdown waits for connections to finish their replies.
    let drainTimeout: TimeAmount

    /// Binds on `group` and starts accepting. Use ``run()`` (as a `Service`) or ``stop()``.
    static func start(configuration: ServerConfiguration, group: any EventLoopGroup, settings: ConnectionHandler.Settings,
                      backend: String) async throws -> Listener {
        let quiesce = ServerQuiescingHelper(group: group)
        let idleTimeout = configuration.idleTimeoutSeconds
        let soft = configuration.clientOutputSoftLimit
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Above the soft limit a connection is not writable: it stops running requests.
            .childChannelOption(.writeBufferWaterMark, value: soft > 0 ? .init(low: soft / 2, high: soft) : .init(low: 32 * 1024, high: 64 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if idleTimeout > 0 {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(Int64(idleTimeout))))
                    }
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(settings: settings))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        settings.logger.info("sluice listening", metadata: [
            "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
            "l2": "\(backend)",
            "maxclients": "\(settings.maxClients)",
        ])
        return Listener(channel: channel, quiesce: quiesce, logger: settings.logger, drainTimeout: .seconds(5))
    }

    init(channel: any Channel, quiesce: ServerQuiescingHelper, logger: Logger, drainTimeout: TimeAmount) {
        self.channel = channel
        self.quiesce = Mutex(quiesce)
        self.logger = logger
        self.drainTimeout = drainTimeout
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            self.initiateShutdown()
        }
        await stop()
    }

    /// Stops accepting; every connection answers what it has read and closes.
    func initiateShutdown() {
        quiesce.withLock { $0?.initiateShutdown(promise: nil) }
    }

    /// Stops accepting and waits (at most `drainTimeout`) for open connections to finish.
    public func stop() async {
        let done = channel.eventLoop.makePromise(of: Void.self)
        guard let helper = quiesce.withLock({ $0 }) else {
            try? await channel.closeFuture.get()
            return
        }
        helper.initiateShutdown(promise: done)
        let timeout = channel.eventLoop.scheduleTask(in: drainTimeout) { done.succeed(()) }
        try? await done.futureResult.get()
        timeout.cancel()
        try? await channel.closeFuture.get()
        quiesce.withLock { $0 = nil }
    }
}
