import Logging
import NIOCore
import SluiceProtocol

/// A few ``RedisConnection``s to one Redis node. Each event loop sends on one connection of
/// its own: a client connection lives on one event loop, so its commands reach Redis in the
/// order it sent them (a client's SET then GET on the same key stay in that order).
final class RedisNodePool: Sendable {
    let endpoint: RedisEndpoint
    let connections: [RedisConnection]

    init(endpoint: RedisEndpoint, connections: Int, commandTimeout: Duration, logger: Logger) {
        self.endpoint = endpoint
        self.connections = (0..<max(connections, 1)).map { _ in
            RedisConnection(endpoint: endpoint, commandTimeout: commandTimeout, logger: logger)
        }
    }

    var isConnected: Bool { connections.contains { $0.isConnected } }

    /// The event loop's connection, or another connected one if that one is down.
    func connection(for eventLoop: any EventLoop) -> RedisConnection {
        let start = Int(bitPattern: UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(connections.count))
        if connections[start].isConnected { return connections[start] }
        for i in 0..<connections.count where connections[(start &+ i) % connections.count].isConnected {
            return connections[(start &+ i) % connections.count]
        }
        return connections[start]
    }

    func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        connection(for: eventLoop).send(arguments, on: eventLoop)
    }

    var counters: RedisConnection.Counters {
        connections.reduce(into: RedisConnection.Counters()) { $0.add($1.counters) }
    }

    func close() {
        for c in connections { c.close() }
    }
}
