import Logging
import NIOCore
import NIOPosix
import SluiceDomain
import SluiceProtocol
import Synchronization

/// The shared L2 in Redis (`--redis`): every Sluice instance reads and writes the same keys,
/// and tells the others to drop their L1 copy when it writes or deletes one.
///
/// Layout: `sluice:c:<key>` holds the entry as one string — a 27-byte header ("SL1", created-at
/// ms, tokens, cost) and the value — with Redis's own expiry (PX), so TTLs are Redis's. A value
/// written there by something else (no header) is served as-is. Invalidations go out on the
/// channel `sluice:inv` as `<8-byte instance id>` then `<4-byte length><key>` for each key
/// written in the same event-loop tick (one PUBLISH for many writes); an instance ignores its own.
public final class RedisCacheStore: Sendable {
    public static let keyPrefix = "sluice:c:"
    public static let invalidationChannel = "sluice:inv"
    static let magic: [UInt8] = Array("SL1".utf8)
    /// Command words, built once (a ByteBuffer per word per call showed up in profiles).
    enum Word {
        static let set = ByteBuffer(string: "SET"), get = ByteBuffer(string: "GET"), pttl = ByteBuffer(string: "PTTL")
        static let px = ByteBuffer(string: "PX"), del = ByteBuffer(string: "DEL"), exists = ByteBuffer(string: "EXISTS")
        static let nx = ByteBuffer(string: "NX"), xx = ByteBuffer(string: "XX")
        static let publish = ByteBuffer(string: "PUBLISH"), channel = ByteBuffer(string: invalidationChannel)
    }
    static let headerLength = 3 + 8 + 8 + 8

    public let client: RedisClient
    let subscriber: Mutex<RedisSubscriber?> = Mutex(nil)
    let instanceID = UInt64.random(in: 1 ... .max)
    let fallbacks = Atomic<Int>(0)
    /// Keys written this tick, per event loop, waiting to go out in one PUBLISH.
    let pendingInvalidations = Mutex<[ObjectIdentifier: ByteBuffer]>([:])
    let invalidationsReceived = Atomic<Int>(0)

    public init(client: RedisClient) {
        self.client = client
    }

    /// Starts listening for other instances' writes: `drop(key)` for each, `dropAll()` after a
    /// break in the subscription (messages may have been missed).
    public func subscribe(logger: Logger, drop: @escaping @Sendable (ByteBuffer) -> Void, dropAll: @escaping @Sendable () -> Void) {
        let me = instanceID
        let s = RedisSubscriber(endpoint: client.endpoint, channels: [Self.invalidationChannel], logger: logger,
                                onSubscribed: { resumed in if resumed { dropAll() } }) { [weak self] payload in
            guard payload.readableBytes >= 8, let sender = payload.getInteger(at: payload.readerIndex, as: UInt64.self),
                  sender != me else { return }
            self?.invalidationsReceived.add(1, ordering: .relaxed)
            var keys = payload
            keys.moveReaderIndex(forwardBy: 8)
            while let length = keys.readInteger(as: UInt32.self), let key = keys.readSlice(length: Int(length)) {
                drop(key)
            }
        }
        subscriber.withLock { $0 = s }
    }

    public var isSubscribed: Bool { subscriber.withLock { $0?.isSubscribed ?? false } }
    public var isConnected: Bool { client.isConnected }

    /// Counts an answer given without Redis (Redis down): INFO/STATS show it.
    public func countFallback() { fallbacks.add(1, ordering: .relaxed) }

    public func close() {
        subscriber.withLock { $0?.close() }
        client.close()
    }

    // MARK: Commands

    static func redisKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: keyPrefix)
        b.writeImmutableBuffer(key)
        return b
    }

    static func leaseKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: "sluice:lease:")
        b.writeImmutableBuffer(key)
        return b
    }

    // MARK: Cluster-wide leases

    /// One lease per key across all instances: SET NX PX. true: this token holds it now.
    public func acquireLease(_ key: ByteBuffer, token: UInt64, milliseconds: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        client.send([ByteBuffer(string: "SET"), Self.leaseKey(key), ByteBuffer(string: String(token)), ByteBuffer(string: "NX"),
                     ByteBuffer(string: "PX"), ByteBuffer(string: String(milliseconds))], on: eventLoop).map { reply in
            if case .simpleString = reply { return true }
            return false
        }
    }

    /// CACHE.SET ... LEASE token: stores unless another caller holds a live lease on the key,
    /// and ends the lease — one atomic step in Redis. true: stored.
    public func writeWithLease(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, token: UInt64, now: Int64,
                               on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let px = meta.expiresAt == 0 ? 0 : max(meta.expiresAt - now, 1)
        return Self.leasedWrite.run(client, keys: [Self.redisKey(key), Self.leaseKey(key)],
                                    arguments: [Self.pack(value, meta), ByteBuffer(string: String(token)), ByteBuffer(string: String(px))],
                                    on: eventLoop).map { [self] reply in
            guard case .integer(1) = reply else { return false }
            publish(key, on: eventLoop)
            return true
        }
    }

    static let leasedWrite = RedisScript("""
        local holder = redis.call('GET', KEYS[2])
        if holder and holder ~= ARGV[2] then return 0 end
        if tonumber(ARGV[3]) > 0 then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        else
          redis.call('SET', KEYS[1], ARGV[1])
        end
        redis.call('DEL', KEYS[2])
        return 1
        """)

    /// SET with the entry's expiry and an optional NX/XX; true when Redis stored it.
    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: String?, now: Int64,
                      on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        var args = [Word.set, Self.redisKey(key), Self.pack(value, meta)]
        if meta.expiresAt != 0 {
            args += [Word.px, ByteBuffer(string: String(max(meta.expiresAt - now, 1)))]
        }
        if let condition { args.append(condition == "NX" ? Word.nx : Word.xx) }
        return client.send(args, on: eventLoop).map { [self] reply in
            guard case .simpleString = reply else { return false }
            publish(key, on: eventLoop)
            return true
        }
    }

    /// DEL; how many existed.
    public func remove(_ keys: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        client.send([Word.del] + keys.map(Self.redisKey), on: eventLoop).map { [self] reply in
            _ = client.send([Word.del] + keys.map(Self.leaseKey), on: eventLoop)
            for key in keys { publish(key, on: eventLoop) }
            if case .integer(let n) = reply { return n }
            return 0
        }
    }

    public func exists(_ keys: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        client.send([Word.exists] + keys.map(Self.redisKey), on: eventLoop).map { reply in
            if case .integer(let n) = reply { return n }
            return 0
        }
    }

    /// Redis's PTTL: ms left, -1 no expiry, -2 no key.
    public func pttl(_ key: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        client.send([Word.pttl, Self.redisKey(key)], on: eventLoop).map { reply in
            if case .integer(let n) = reply { return n }
            return -2
        }
    }

    /// Queues an invalidation; the first one of a tick schedules the PUBLISH for the end of it.
    func publish(_ key: ByteBuffer, on eventLoop: any EventLoop) {
        let id = ObjectIdentifier(eventLoop)
        let first = pendingInvalidations.withLock { pending -> Bool in
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
            guard let payload = pendingInvalidations.withLock({ $0.removeValue(forKey: id) }) else { return }
            _ = client.send([Word.publish, Word.channel, payload], on: eventLoop)
        }
    }

    // MARK: Entry format

    static func pack(_ value: ByteBuffer, _ meta: EntryMeta) -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(headerLength + value.readableBytes)
        b.writeBytes(magic)
        b.writeInteger(meta.createdAt)
        b.writeInteger(meta.tokens)
        b.writeInteger(meta.cost.bitPattern)
        b.writeImmutableBuffer(value)
        return b
    }

    static func unpack(_ stored: ByteBuffer, expiresAt: Int64, now: Int64) -> (ByteBuffer, EntryMeta) {
        guard stored.readableBytes >= headerLength, stored.getBytes(at: stored.readerIndex, length: 3) == magic else {
            return (stored, EntryMeta(createdAt: now, expiresAt: expiresAt))
        }
        let i = stored.readerIndex
        let meta = EntryMeta(createdAt: stored.getInteger(at: i + 3)!, expiresAt: expiresAt,
                             tokens: stored.getInteger(at: i + 11)!, cost: Double(bitPattern: stored.getInteger(at: i + 19)!))
        return (stored.getSlice(at: i + headerLength, length: stored.readableBytes - headerLength)!, meta)
    }
}

extension RedisCacheStore: L2Store {
    public var kind: String { "redis" }

    /// GET and PTTL in one round trip (both pipelined on one connection).
    public func fetch(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<(ByteBuffer, EntryMeta)?> {
        let k = Self.redisKey(key)
        let value = client.send([Word.get, k], on: eventLoop)
        let ttl = client.send([Word.pttl, k], on: eventLoop)
        return value.and(ttl).map { value, ttl in
            guard case .bulkString(let stored?) = value else { return nil }
            var expiresAt: Int64 = 0
            if case .integer(let ms) = ttl, ms > 0 { expiresAt = now + Int64(ms) }
            return Self.unpack(stored, expiresAt: expiresAt, now: now)
        }
    }

    public func store(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta) {
        // Fire-and-forget path (promotion-free writes); commands use write(...) and wait.
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        _ = write(key, value: value, meta: meta, condition: nil, now: meta.createdAt, on: loop)
    }

    public func delete(_ key: ByteBuffer) {
        _ = remove([key], on: MultiThreadedEventLoopGroup.singleton.any())
    }

    public func statistics() -> [(String, Int)] {
        let c = client.counters
        return [
            ("redis_connected", isConnected ? 1 : 0),
            ("redis_subscribed", isSubscribed ? 1 : 0),
            ("redis_commands", c.commands),
            ("redis_failures", c.failures),
            ("redis_connects", c.connects),
            ("redis_disconnects", c.disconnects),
            ("redis_fallbacks", fallbacks.load(ordering: .relaxed)),
            ("redis_invalidations_received", invalidationsReceived.load(ordering: .relaxed)),
        ]
    }
}
