import Logging
import NIOCore
import Synchronization

/// Tells the other Sluice instances on a Redis to drop their L1 copy of a key this one wrote or
/// deleted, and listens for theirs.
///
/// Wire format on the channel `sluice:inv`: an 8-byte instance id, then `<4-byte length><key>`
/// for every key written in the same event-loop tick — one PUBLISH for many writes. An instance
/// ignores its own messages. After a break in the subscription, messages may have been missed:
/// then every L1 copy is dropped.
public final class RedisInvalidations: Sendable {
    public static let channel = "sluice:inv"
    static let publishWord = ByteBuffer(string: "PUBLISH"), channelWord = ByteBuffer(string: channel)

    let client: RedisClient
    let instanceID = UInt64.random(in: 1 ... .max)
    /// Keys written this tick, per event loop, waiting to go out in one PUBLISH.
    let pending = Mutex<[ObjectIdentifier: ByteBuffer]>([:])
    let subscriber = Mutex<RedisSubscriber?>(nil)
    let received = Atomic<Int>(0)
    /// Bytes of PUBLISHes waiting to be tried again, and invalidations given up on.
    let retrying = Atomic<Int>(0), lost = Atomic<Int>(0)
    /// A PUBLISH that failed is tried again (the other instances would otherwise serve their old
    /// copy until it expires) — for about five minutes, and while at most this many bytes wait.
    static let maxRetryBytes = 64 << 20, maxAttempts = 300
    let logger: Logger?

    public init(client: RedisClient, logger: Logger? = nil) {
        self.client = client
        self.logger = logger
    }

    /// Starts listening: `drop(key)` for each key another instance changed, `dropAll()` after a
    /// break in the subscription.
    public func subscribe(logger: Logger, drop: @escaping @Sendable (ByteBuffer) -> Void, dropAll: @escaping @Sendable () -> Void) {
        let me = instanceID
        let client = client
        let s = RedisSubscriber(endpoint: { client.sessionEndpoint(forKey: nil, attempt: $0) }, channels: [Self.channel], logger: logger,
                                onSubscribed: { resumed in if resumed { dropAll() } }) { [weak self] payload in
            guard payload.readableBytes >= 8, let sender = payload.getInteger(at: payload.readerIndex, as: UInt64.self),
                  sender != me else { return }
            self?.received.add(1, ordering: .relaxed)
            var keys = payload
            keys.moveReaderIndex(forwardBy: 8)
            while let length = keys.readInteger(as: UInt32.self), let key = keys.readSlice(length: Int(length)) {
                drop(key)
            }
        }
        subscriber.withLock { $0 = s }
    }

    public var isSubscribed: Bool { subscriber.withLock { $0?.isSubscribed ?? false } }
    public var receivedCount: Int { received.load(ordering: .relaxed) }

    /// Queues an invalidation; the first one of a tick schedules the PUBLISH for the end of it.
    public func publish(_ key: ByteBuffer, on eventLoop: any EventLoop) {
        let id = ObjectIdentifier(eventLoop)
        let first = pending.withLock { pending -> Bool in
            let first = pending[id] == nil
            if first {
                var payload = ByteBuffer()
                payload.writeInteger(instanceID)
                pending[id] = payload
            }
            pending[id]!.writeInteger(UInt32(key.readableBytes))
            pending[id]!.writeImmutableBuffer(key)
            return first
        }
        guard first else { return }
        eventLoop.execute { [self] in
            guard let payload = pending.withLock({ $0.removeValue(forKey: id) }) else { return }
            send(payload, attempt: 0, on: eventLoop)
        }
    }

    /// PUBLISH, tried again with a growing pause (up to 1 s) while Redis does not take it.
    func send(_ payload: ByteBuffer, attempt: Int, on eventLoop: any EventLoop) {
        client.send([Self.publishWord, Self.channelWord, payload], on: eventLoop).whenComplete { [self] result in
            if attempt > 0 { retrying.subtract(payload.readableBytes, ordering: .relaxed) }
            if case .success(let reply) = result {
                if case .error = reply {} else { return }
            }
            let keys = Self.keyCount(payload)
            guard attempt < Self.maxAttempts,
                  retrying.add(payload.readableBytes, ordering: .relaxed).newValue <= Self.maxRetryBytes else {
                if attempt < Self.maxAttempts { retrying.subtract(payload.readableBytes, ordering: .relaxed) }
                lost.add(keys, ordering: .relaxed)
                logger?.error("invalidations not delivered: other instances may serve old values of these keys until they expire",
                              metadata: ["keys": "\(keys)", "attempts": "\(attempt + 1)"])
                return
            }
            eventLoop.scheduleTask(in: .milliseconds(min(50 << min(attempt, 5), 1000))) { [self] in
                send(payload, attempt: attempt + 1, on: eventLoop)
            }
        }
    }

    static func keyCount(_ payload: ByteBuffer) -> Int {
        var keys = payload
        keys.moveReaderIndex(forwardBy: min(8, keys.readableBytes))
        var n = 0
        while let length = keys.readInteger(as: UInt32.self), keys.readSlice(length: Int(length)) != nil { n += 1 }
        return n
    }

    /// Invalidations given up on since start (each a key another instance may serve stale).
    public var lostCount: Int { lost.load(ordering: .relaxed) }

    public func close() {
        subscriber.withLock { $0?.close() }
    }
}
