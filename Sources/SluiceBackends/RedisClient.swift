import Logging
import NIOCore
import SluiceProtocol
import Synchronization

/// A few ``RedisConnection``s used in turn, so one slow reply does not hold up everything and
/// two cores can be busy with Redis I/O.
public final class RedisClient: Sendable {
    public let endpoint: RedisEndpoint
    let connections: [RedisConnection]
    let next = Atomic<Int>(0)

    public init(endpoint: RedisEndpoint, connections: Int = 2, commandTimeout: Duration = .seconds(2),
                logger: Logger = Logger(label: "sluice.redis")) {
        self.endpoint = endpoint
        self.connections = (0..<max(connections, 1)).map { _ in
            RedisConnection(endpoint: endpoint, commandTimeout: commandTimeout, logger: logger)
        }
    }

    public var isConnected: Bool { connections.contains { $0.isConnected } }

    /// Sends on the next connected connection (fails at once when none is).
    public func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let start = next.add(1, ordering: .relaxed).oldValue
        for i in 0..<connections.count {
            let c = connections[(start &+ i) % connections.count]
            if c.isConnected { return c.send(arguments, on: eventLoop) }
        }
        return connections[start % connections.count].send(arguments, on: eventLoop)
    }

    public func send(_ words: String..., on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        send(words.map { ByteBuffer(string: $0) }, on: eventLoop)
    }

    public var counters: RedisConnection.Counters {
        connections.reduce(into: RedisConnection.Counters()) { sum, c in
            let x = c.counters
            sum.commands += x.commands
            sum.failures += x.failures
            sum.connects += x.connects
            sum.failedConnects += x.failedConnects
            sum.disconnects += x.disconnects
        }
    }

    public func close() {
        for c in connections { c.close() }
    }
}
