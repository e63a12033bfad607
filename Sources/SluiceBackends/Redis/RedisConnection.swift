import CHiredis
import DequeModule
import Foundation
import Logging
import NIOCore
import SluiceProtocol
import Synchronization

/// One connection to Redis through hiredis, on a thread of its own (never an event loop).
///
/// Commands are pipelined: the thread takes everything queued, writes it in one go
/// (`redisAppendCommandArgv`), then reads the replies in order; whatever arrives meanwhile is the
/// next batch. Replies complete NIO promises, which hop to the caller's event loop.
///
/// While disconnected, `send` fails at once with ``RedisError/unavailable(_:)`` so callers fall
/// back instead of waiting, and the thread reconnects with backoff (50 ms doubling to 1 s).
/// An idle connection is PINGed every `healthInterval`, so a Redis that went away (or came back)
/// is noticed without traffic. The socket's read/write timeout (`commandTimeout`) bounds how long
/// a command can hang; hitting it drops the connection and fails what was in flight.
public final class RedisConnection: @unchecked Sendable {
    // @unchecked: `queue`, `closed` are guarded by `condition`; the hiredis context is used only
    // by the connection thread.
    struct Pending {
        var arguments: [ByteBuffer]
        /// nil for the connection's own health PING.
        var promise: EventLoopPromise<RESPValue>?
    }

    public struct Counters: Sendable, Hashable {
        public var commands = 0
        public var failures = 0
        public var connects = 0
        public var failedConnects = 0
        public var disconnects = 0
        /// Pipelined round trips (a batch written, every reply read) and their time, µs.
        public var roundTrips = 0
        public var roundTripMicroseconds = 0

        /// Adds another connection's counts (a pool's, a cluster's totals).
        mutating func add(_ x: Counters) {
            commands += x.commands
            failures += x.failures
            connects += x.connects
            failedConnects += x.failedConnects
            disconnects += x.disconnects
            roundTrips += x.roundTrips
            roundTripMicroseconds += x.roundTripMicroseconds
        }
    }

    public let endpoint: RedisEndpoint
    /// Commands waiting to be written past this fail at once (`unavailable`): a Redis slower
    /// than the clients must not grow the queue without bound; the callers fall back.
    public static let maxQueued = 100_000
    /// ... and past this many bytes of arguments (100,000 commands of 16 MB values would not fit).
    public static let maxQueuedBytes = 256 << 20
    let connectTimeout: Duration
    let commandTimeout: Duration
    let healthInterval: Duration
    let logger: Logger
    let condition = NSCondition()
    var queue = Deque<Pending>()
    var queuedBytes = 0
    var closed = false
    let connectedFlag = Atomic<Bool>(false)
    let stats = Mutex(Counters())
    let finished = NSCondition()
    var threadDone = false

    public init(endpoint: RedisEndpoint, connectTimeout: Duration = .milliseconds(500), commandTimeout: Duration = .seconds(2),
                healthInterval: Duration = .milliseconds(250), logger: Logger = Logger(label: "sluice.redis")) {
        self.endpoint = endpoint
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.healthInterval = healthInterval
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "sluice-redis"
        thread.start()
    }

    public var isConnected: Bool { connectedFlag.load(ordering: .relaxed) }
    public var counters: Counters { stats.withLock { $0 } }

    /// Sends one command; the future fails with ``RedisError`` when Redis can't answer.
    /// A Redis error reply is a successful `.error(...)` value.
    public func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        condition.lock()
        if closed {
            condition.unlock()
            promise.fail(RedisError.shutDown)
        } else if !isConnected {
            condition.unlock()
            stats.withLock { $0.failures += 1 }
            promise.fail(RedisError.unavailable("not connected to \(endpoint)"))
        } else if queue.count >= Self.maxQueued || queuedBytes >= Self.maxQueuedBytes {
            condition.unlock()
            stats.withLock { $0.failures += 1 }
            promise.fail(RedisError.unavailable("\(queue.count) commands (\(queuedBytes) bytes) already waiting for \(endpoint)"))
        } else {
            queuedBytes += arguments.reduce(0) { $0 + $1.readableBytes }
            queue.append(Pending(arguments: arguments, promise: promise))
            condition.signal()
            condition.unlock()
        }
        return promise.futureResult
    }

    /// `ASKING` then the command, queued together so nothing comes between them on the
    /// connection (Redis Cluster's ASK redirection holds for the next command only).
    public func sendAsking(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let promise = eventLoop.makePromise(of: RESPValue.self)
        condition.lock()
        let bytes = arguments.reduce(Self.asking.readableBytes) { $0 + $1.readableBytes }
        if closed || !isConnected || queue.count + 2 > Self.maxQueued || queuedBytes + bytes > Self.maxQueuedBytes {
            let reason = closed ? RedisError.shutDown : RedisError.unavailable("cannot queue for \(endpoint)")
            condition.unlock()
            promise.fail(reason)
        } else {
            queuedBytes += bytes
            queue.append(Pending(arguments: [Self.asking], promise: nil))
            queue.append(Pending(arguments: arguments, promise: promise))
            condition.signal()
            condition.unlock()
        }
        return promise.futureResult
    }

    static let asking = ByteBuffer(string: "ASKING")

    /// Stops the thread; queued commands fail with ``RedisError/shutDown``. Blocks briefly.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
        finished.lock()
        while !threadDone { finished.wait() }
        finished.unlock()
    }

    // MARK: The connection thread

    func run() {
        var context: UnsafeMutablePointer<redisContext>?
        var backoff = Duration.milliseconds(50)
        defer {
            if let context { redisFree(context) }
            connectedFlag.store(false, ordering: .relaxed)
            failQueued(RedisError.shutDown)
            finished.lock()
            threadDone = true
            finished.broadcast()
            finished.unlock()
        }
        while !isClosed {
            if context == nil {
                switch Self.open(endpoint, connectTimeout: connectTimeout, readTimeout: commandTimeout) {
                case .success(let c):
                    context = c
                    backoff = .milliseconds(50)
                    connectedFlag.store(true, ordering: .relaxed)
                    stats.withLock { $0.connects += 1 }
                    logger.info("connected to Redis", metadata: ["endpoint": "\(endpoint)"])
                case .failure(let error):
                    stats.withLock { $0.failedConnects += 1 }
                    logger.debug("Redis connect failed", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                    sleepUnlessClosed(backoff)
                    backoff = min(backoff * 2, .seconds(1))
                    continue
                }
            }
            let batch = nextBatch()
            guard let c = context else { continue }
            // Nothing to do for a while: a PING tells whether the connection still works.
            let work = batch.isEmpty ? [Pending(arguments: [ByteBuffer(string: "PING")], promise: nil)] : batch
            let started = ContinuousClock.now
            let failure = pipeline(work, on: c)
            if failure == nil {
                let took = ContinuousClock.now - started
                let micros = Int(took.components.seconds) * 1_000_000 + Int(took.components.attoseconds / 1_000_000_000_000)
                stats.withLock {
                    $0.roundTrips += 1
                    $0.roundTripMicroseconds += micros
                }
            }
            if let failure {
                redisFree(c)
                context = nil
                connectedFlag.store(false, ordering: .relaxed)
                stats.withLock { $0.disconnects += 1 }
                logger.warning("lost the Redis connection", metadata: ["endpoint": "\(endpoint)", "error": "\(failure)"])
                // Commands queued behind the broken batch were accepted while connected: fail them
                // now rather than let them wait for a reconnect.
                failQueued(RedisError.connectionLost(failure))
            }
        }
    }

    var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }

    /// Waits for commands (up to `healthInterval`) and takes all that are queued.
    func nextBatch() -> [Pending] {
        condition.lock()
        defer { condition.unlock() }
        if queue.isEmpty && !closed {
            _ = condition.wait(until: Date(timeIntervalSinceNow: healthInterval.seconds))
        }
        let batch = Array(queue.prefix(1024))
        queue.removeFirst(batch.count)
        queuedBytes -= batch.reduce(0) { $0 + $1.arguments.reduce(0) { $0 + $1.readableBytes } }
        return batch
    }

    /// Writes every command, then reads the replies in order. Returns the error that broke the
    /// connection, if one did (the rest of the batch has been failed with it).
    func pipeline(_ work: [Pending], on c: UnsafeMutablePointer<redisContext>) -> String? {
        for item in work where Self.append(item.arguments, to: c) != REDIS_OK {
            return fail(work, from: 0, c)
        }
        // Replies are handed over one task per event loop per batch, not one wake-up each.
        var completions: [ObjectIdentifier: (any EventLoop, [(EventLoopPromise<RESPValue>, RESPValue)])] = [:]
        defer {
            stats.withLock { $0.commands += completions.values.reduce(0) { $0 + $1.1.count } }
            for (loop, done) in completions.values {
                loop.execute { for (promise, value) in done { promise.succeed(value) } }
            }
        }
        for (i, item) in work.enumerated() {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else { return fail(work, from: i, c) }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            let value = Self.value(of: reply)
            freeReplyObject(raw)
            if let promise = item.promise {
                let loop = promise.futureResult.eventLoop
                completions[ObjectIdentifier(loop), default: (loop, [])].1.append((promise, value))
            }
        }
        return nil
    }

    func fail(_ work: [Pending], from index: Int, _ c: UnsafeMutablePointer<redisContext>) -> String {
        let message = Self.errorString(c)
        let failed = work[index...].filter { $0.promise != nil }
        stats.withLock { $0.failures += failed.count }
        for item in failed { item.promise?.fail(RedisError.connectionLost(message)) }
        return message
    }

    func failQueued(_ error: RedisError) {
        condition.lock()
        let pending = Array(queue)
        queue.removeAll()
        queuedBytes = 0
        condition.unlock()
        if !pending.isEmpty { stats.withLock { $0.failures += pending.count } }
        for p in pending { p.promise?.fail(error) }
    }

    func sleepUnlessClosed(_ duration: Duration) {
        condition.lock()
        if !closed { _ = condition.wait(until: Date(timeIntervalSinceNow: duration.seconds)) }
        condition.unlock()
    }

    /// Connects, sets the read/write timeout (nil: none, for subscribers), AUTH and SELECT.
    static func open(_ endpoint: RedisEndpoint, connectTimeout: Duration, readTimeout: Duration?) -> Result<UnsafeMutablePointer<redisContext>, RedisError> {
        guard let c = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), connectTimeout.timeval) else {
            return .failure(.unavailable("cannot allocate a hiredis context"))
        }
        if c.pointee.err != 0 {
            let message = errorString(c)
            redisFree(c)
            return .failure(.unavailable(message))
        }
        if let readTimeout { redisSetTimeout(c, readTimeout.timeval) }
        redisEnableKeepAlive(c)
        var setup: [[String]] = []
        if let password = endpoint.password {
            setup.append(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
        for words in setup {
            let command = words.map { ByteBuffer(string: $0) }
            guard append(command, to: c) == REDIS_OK else { break }
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else { break }
            let value = value(of: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if case .error(let message) = value {
                redisFree(c)
                return .failure(.unavailable("\(words[0]): \(message)"))
            }
        }
        if c.pointee.err != 0 {
            let message = errorString(c)
            redisFree(c)
            return .failure(.unavailable(message))
        }
        return .success(c)
    }

    // MARK: hiredis glue

    /// `redisAppendCommandArgv` with argv/lengths built from buffers (binary-safe; hiredis copies).
    static func append(_ arguments: [ByteBuffer], to c: UnsafeMutablePointer<redisContext>) -> Int32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(arguments.reduce(0) { $0 + $1.readableBytes })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for a in arguments {
            bytes.append(contentsOf: a.readableBytesView)
            lengths.append(a.readableBytes)
        }
        return bytes.withUnsafeBufferPointer { all -> Int32 in
            // A valid pointer even for all-empty arguments.
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { zeroPointer -> Int32 in
                let base = all.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(zeroPointer)
                var offset = 0
                var argv: [UnsafePointer<CChar>?] = []
                argv.reserveCapacity(arguments.count)
                for n in lengths {
                    argv.append((base + offset).assumingMemoryBound(to: CChar.self))
                    offset += n
                }
                return argv.withUnsafeMutableBufferPointer { argvPointer in
                    lengths.withUnsafeBufferPointer { lengthPointer in
                        redisAppendCommandArgv(c, Int32(arguments.count), argvPointer.baseAddress, lengthPointer.baseAddress)
                    }
                }
            }
        }
    }

    static func value(of reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(ByteBuffer(bytes: UnsafeRawBufferPointer(start: r.str, count: Int(r.len))))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: UnsafeRawBufferPointer(start: r.str, count: Int(r.len)), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: Int(r.len)), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(r.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(r.elements)).map { value(of: r.element[$0]!) })
        default:
            return .null
        }
    }

    static func errorString(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            let text = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            return text.isEmpty ? "connection error \(c.pointee.err)" : text
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    var timeval: timeval {
        let (s, atto) = components
        return Glibc.timeval(tv_sec: Int(s), tv_usec: Int(atto / 1_000_000_000_000))
    }
}
