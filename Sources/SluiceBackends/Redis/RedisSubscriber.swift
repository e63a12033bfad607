import CHiredis
import Foundation
import Logging
import NIOCore
import Synchronization

/// A pub/sub subscription on a connection of its own (a subscribed connection can do nothing
/// else). Messages are handed to `onMessage` on the subscriber's thread. After any break it
/// reconnects with backoff and calls `onSubscribed(resumed: true)`, because messages sent while
/// it was away are lost and whoever relies on them must assume the worst.
public final class RedisSubscriber: Sendable {
    let channels: [String]
    let onMessage: @Sendable (ByteBuffer) -> Void
    let onSubscribed: @Sendable (_ resumed: Bool) -> Void
    let logger: Logger
    let worker: RedisSessionThread
    let subscribedFlag = Atomic<Bool>(false)
    let sessions = Atomic<Int>(0)

    /// `endpoint`: where to (re)connect, asked at every attempt (a cluster's subscription moves
    /// to another master when its node fails; classic pub/sub reaches every node).
    public init(endpoint: @escaping @Sendable (Int) -> RedisEndpoint, channels: [String], logger: Logger = Logger(label: "sluice.redis.sub"),
                onSubscribed: @escaping @Sendable (_ resumed: Bool) -> Void = { _ in },
                onMessage: @escaping @Sendable (ByteBuffer) -> Void) {
        self.channels = channels
        self.onMessage = onMessage
        self.onSubscribed = onSubscribed
        self.logger = logger
        // No read timeout: a subscription waits for messages as long as it takes.
        worker = RedisSessionThread(endpoint: endpoint, readTimeout: nil)
        worker.start(name: "sluice-redis-sub") { [self] c in
            listen(c, resumed: sessions.add(1, ordering: .relaxed).oldValue > 0)
            subscribedFlag.store(false, ordering: .relaxed)
        }
    }

    public var isSubscribed: Bool { subscribedFlag.load(ordering: .relaxed) }

    public func close() { worker.close() }

    /// Subscribes and delivers messages until the connection breaks.
    func listen(_ c: UnsafeMutablePointer<redisContext>, resumed: Bool) {
        let command = [ByteBuffer(string: "SUBSCRIBE")] + channels.map { ByteBuffer(string: $0) }
        guard RedisConnection.append(command, to: c) == REDIS_OK else { return }
        var confirmed = 0
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else {
                if !worker.isClosed { logger.warning("Redis subscription lost", metadata: ["error": "\(RedisConnection.errorString(c))"]) }
                return
            }
            let value = RedisConnection.value(of: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            guard case .array(let items?) = value, items.count == 3, let kind = items[0].string else { continue }
            if kind == "subscribe" {
                confirmed += 1
                if confirmed == channels.count {
                    subscribedFlag.store(true, ordering: .relaxed)
                    onSubscribed(resumed)
                }
            } else if kind == "message", case .bulkString(let payload?) = items[2] {
                onMessage(payload)
            }
        }
    }
}
