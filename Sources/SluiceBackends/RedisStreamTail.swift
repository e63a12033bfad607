import CHiredis
import Foundation
import Logging
import NIOCore
import SluiceProtocol
import Synchronization

/// Follows one Redis stream on a connection of its own: replays it from the start, then blocks
/// on XREAD for new entries, handing each entry's fields to `onEntry` on its own thread. After a
/// break it reconnects and goes on from the last ID it saw (or from the start, when the stream
/// was trimmed past it — applying an entry twice must be harmless for the caller).
public final class RedisStreamTail: @unchecked Sendable {
    // @unchecked: `closed` and `fd` are guarded by `lock`; the context belongs to the thread.
    public let endpoint: RedisEndpoint
    let stream: String
    let onEntry: @Sendable ([String: ByteBuffer]) -> Void
    let logger: Logger
    let lock = NSCondition()
    var closed = false
    var fd: Int32 = -1
    var done = false
    let caughtUp = Atomic<Bool>(false)

    public init(endpoint: RedisEndpoint, stream: String, logger: Logger, onEntry: @escaping @Sendable ([String: ByteBuffer]) -> Void) {
        self.endpoint = endpoint
        self.stream = stream
        self.onEntry = onEntry
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "sluice-redis-tail"
        thread.start()
    }

    /// The replay of what the stream held at start-up is done.
    public var isCaughtUp: Bool { caughtUp.load(ordering: .relaxed) }

    public func close() {
        lock.lock()
        closed = true
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
        while !done { lock.wait() }
        lock.unlock()
    }

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    func run() {
        var lastID = "0"
        while !isClosed {
            guard case .success(let c) = RedisConnection.open(endpoint, connectTimeout: .milliseconds(500), readTimeout: .seconds(5)) else {
                lock.lock()
                if !closed { _ = lock.wait(until: Date(timeIntervalSinceNow: 0.2)) }
                lock.unlock()
                continue
            }
            lock.lock()
            fd = c.pointee.fd
            lock.unlock()
            follow(c, from: &lastID)
            lock.lock()
            fd = -1
            lock.unlock()
            redisFree(c)
        }
        lock.lock()
        done = true
        lock.broadcast()
        lock.unlock()
    }

    /// XREAD in a loop until the connection breaks. Blocks 1 s at a time (under the 5 s read
    /// timeout), so a dead Redis is noticed and a closed tail stops.
    func follow(_ c: UnsafeMutablePointer<redisContext>, from lastID: inout String) {
        while !isClosed {
            let command = ["XREAD", "COUNT", "1000", "BLOCK", "1000", "STREAMS", stream, lastID].map { ByteBuffer(string: $0) }
            guard RedisConnection.append(command, to: c) == REDIS_OK else { return }
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else { return }
            let reply = RedisConnection.value(of: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            // [[stream, [[id, [field, value, ...]], ...]]] or nil when BLOCK timed out.
            guard case .array(let streams?) = reply, let first = streams.first, case .array(let parts?) = first, parts.count == 2,
                  case .array(let entries?) = parts[1] else {
                caughtUp.store(true, ordering: .relaxed)
                continue
            }
            for entry in entries {
                guard case .array(let pair?) = entry, pair.count == 2, let id = pair[0].string, case .array(let kv?) = pair[1] else { continue }
                var fields: [String: ByteBuffer] = [:]
                var i = 0
                while i + 1 < kv.count {
                    if let k = kv[i].string, case .bulkString(let v?) = kv[i + 1] { fields[k] = v }
                    i += 2
                }
                onEntry(fields)
                lastID = id
            }
            if entries.count < 1000 { caughtUp.store(true, ordering: .relaxed) }
        }
    }
}
