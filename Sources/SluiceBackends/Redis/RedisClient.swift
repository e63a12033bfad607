import Logging
import NIOCore
import SluiceProtocol

/// A few ``RedisConnection``s, so one slow reply does not hold up everything and two cores can
/// be busy with Redis I/O. Each event loop sends on one connection of its own: a client
/// connection lives on one event loop, so its commands reach Redis in the order it sent them
/// (a client's SET then GET on the same key stay in that order).
public final class RedisClient: Sendable {
    public let endpoint: RedisEndpoint
    let connections: [RedisConnection]

    public init(endpoint: RedisEndpoint, connections: Int = 2, commandTimeout: Duration = .seconds(2),
                logger: Logger = Logger(label: "sluice.redis")) {
        self.endpoint = endpoint
        self.connections = (0..<max(connections, 1)).map { _ in
            RedisConnection(endpoint: endpoint, commandTimeout: commandTimeout, logger: logger)
        }
    }

    public var isConnected: Bool { connections.contains { $0.isConnected } }

    /// Sends on the event loop's connection, or another connected one if that one is down
    /// (fails at once when none is connected).
    public func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let start = Int(bitPattern: UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(connections.count))
        if connections[start].isConnected { return connections[start].send(arguments, on: eventLoop) }
        for i in 0..<connections.count {
            let c = connections[(start &+ i) % connections.count]
            if c.isConnected { return c.send(arguments, on: eventLoop) }
        }
        return connections[start % connections.count].send(arguments, on: eventLoop)
    }


    public var counters: RedisConnection.Counters {
        connections.reduce(into: RedisConnection.Counters()) { sum, c in
            let x = c.counters
            sum.commands += x.commands
            sum.failures += x.failures
            sum.connects += x.connects
            sum.failedConnects += x.failedConnects
            sum.disconnects += x.disconnects
            sum.roundTrips += x.roundTrips
            sum.roundTripMicroseconds += x.roundTripMicroseconds
        }
    }

    public func close() {
        for c in connections { c.close() }
    }
}
