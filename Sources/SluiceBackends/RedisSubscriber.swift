import CHiredis
import Foundation
import Logging
import NIOCore
import Synchronization

/// A pub/sub subscription on a connection of its own (a subscribed connection can do nothing
/// else). Messages are handed to `onMessage` on the subscriber's thread. After any break it
/// reconnects with backoff and calls `onSubscribed(resumed: true)`, because messages sent while
/// it was away are lost and whoever relies on them must assume the worst.
public final class RedisSubscriber: @unchecked Sendable {
    // @unchecked: `closed` and `fd` are guarded by `lock`; the context belongs to the thread.
    public let endpoint: RedisEndpoint
    let channels: [String]
    let onMessage: @Sendable (ByteBuffer) -> Void
    let onSubscribed: @Sendable (_ resumed: Bool) -> Void
    let logger: Logger
    let lock = NSCondition()
    var closed = false
    var fd: Int32 = -1
    var done = false
    let subscribedFlag = Atomic<Bool>(false)

    public init(endpoint: RedisEndpoint, channels: [String], logger: Logger = Logger(label: "sluice.redis.sub"),
                onSubscribed: @escaping @Sendable (_ resumed: Bool) -> Void = { _ in },
                onMessage: @escaping @Sendable (ByteBuffer) -> Void) {
        self.endpoint = endpoint
        self.channels = channels
        self.onMessage = onMessage
        self.onSubscribed = onSubscribed
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "sluice-redis-sub"
        thread.start()
    }

    public var isSubscribed: Bool { subscribedFlag.load(ordering: .relaxed) }

    public func close() {
        lock.lock()
        closed = true
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }  // unblocks the thread's read
        lock.broadcast()
        while !done { lock.wait() }
        lock.unlock()
    }

    func run() {
        var backoff = Duration.milliseconds(50)
        var resumed = false
        while true {
            lock.lock()
            if closed { break }
            lock.unlock()
            guard case .success(let c) = RedisConnection.open(endpoint, connectTimeout: .milliseconds(500), readTimeout: nil) else {
                lock.lock()
                if !closed { _ = lock.wait(until: Date(timeIntervalSinceNow: backoff.seconds)) }
                lock.unlock()
                backoff = min(backoff * 2, .seconds(1))
                continue
            }
            lock.lock()
            fd = c.pointee.fd
            let stop = closed
            lock.unlock()
            if !stop {
                backoff = .milliseconds(50)
                listen(c, resumed: resumed)
                resumed = true
            }
            subscribedFlag.store(false, ordering: .relaxed)
            lock.lock()
            fd = -1
            lock.unlock()
            redisFree(c)
        }
        done = true
        lock.broadcast()
        lock.unlock()
    }

    /// Subscribes and delivers messages until the connection breaks.
    func listen(_ c: UnsafeMutablePointer<redisContext>, resumed: Bool) {
        let command = [ByteBuffer(string: "SUBSCRIBE")] + channels.map { ByteBuffer(string: $0) }
        guard RedisConnection.append(command, to: c) == REDIS_OK else { return }
        var confirmed = 0
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else {
                if !isClosed { logger.warning("Redis subscription lost", metadata: ["error": "\(RedisConnection.errorString(c))"]) }
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

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }
}
