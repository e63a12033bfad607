import CHiredis
import Foundation
import Logging
import NIOCore
import SluiceProtocol
import Synchronization

/// Follows one Redis stream on a connection of its own: replays it from the start, then blocks
/// on XREAD for new entries, handing each entry's ID and fields to `onEntry` on its own thread. After a
/// break it reconnects and goes on from the last ID it saw (or from the start, when the stream
/// was trimmed past it — applying an entry twice must be harmless for the caller).
public final class RedisStreamTail: @unchecked Sendable {
    // @unchecked: `lastID` is touched only by the worker's thread.
    let stream: String
    let onEntry: @Sendable (String, [String: ByteBuffer]) -> Void
    let logger: Logger
    let worker: RedisSessionThread
    let caughtUp = Atomic<Bool>(false)
    var lastID = "0"

    /// `endpoint`: where to (re)connect, asked at every attempt (in a cluster, the stream's
    /// master, which a failover changes).
    public init(endpoint: @escaping @Sendable (Int) -> RedisEndpoint, stream: String, logger: Logger, onEntry: @escaping @Sendable (String, [String: ByteBuffer]) -> Void) {
        self.stream = stream
        self.onEntry = onEntry
        self.logger = logger
        // Reads block 1 s at a time, well under this timeout, so a dead Redis is noticed.
        worker = RedisSessionThread(endpoint: endpoint, readTimeout: .seconds(5))
        worker.start(name: "sluice-redis-tail") { [self] c in follow(c, from: &lastID) }
    }

    /// The replay of what the stream held at start-up is done.
    public var isCaughtUp: Bool { caughtUp.load(ordering: .relaxed) }

    public func close() { worker.close() }

    /// Entries one XREAD asks for at most, and the bytes a read is to hold about: XREAD has no
    /// byte limit, and a thousand 16 MiB answers would be 16 GB in one reply. The count starts
    /// small, follows the largest entry of the last read, and at most doubles from one read to
    /// the next — so a replay of large entries reads a few at a time. (A bound, not a promise:
    /// after a run of small entries, one read may still meet a run of large ones.)
    static let maxCount = 1_000
    static let firstCount = 16
    static let readBytes = 32 << 20

    /// The next read's count, after `count` that met entries of at most `largest` bytes.
    static func nextCount(after count: Int, largest: Int) -> Int {
        min(max(readBytes / max(largest, 1), 1), max(count, 1) * 2, maxCount)
    }

    /// XREAD in a loop until the connection breaks. Blocks 1 s at a time (under the 5 s read
    /// timeout), so a dead Redis is noticed and a closed tail stops.
    func follow(_ c: UnsafeMutablePointer<redisContext>, from lastID: inout String) {
        var count = Self.firstCount
        while !worker.isClosed {
            // Until caught up, reads do not block: an empty stream (or its end) answers nil at
            // once, and readiness waits for nothing else.
            let block = caughtUp.load(ordering: .relaxed) ? ["BLOCK", "1000"] : []
            let command = (["XREAD", "COUNT", String(count)] + block + ["STREAMS", stream, lastID]).map { ByteBuffer(string: $0) }
            guard RedisConnection.append(command, to: c) == REDIS_OK else { return }
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(c, &raw) == REDIS_OK, let raw else { return }
            let reply = RedisConnection.value(of: raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            if case .error(let message) = reply {
                // In a cluster: MOVED (asked the wrong node, the map was not known yet or a
                // failover moved the stream). Reconnect, after a pause, to the owner then.
                logger.debug("stream tail: \(message)")
                usleep(100_000)
                return
            }
            // [[stream, [[id, [field, value, ...]], ...]]] or nil when BLOCK timed out.
            guard case .array(let streams?) = reply, let first = streams.first, case .array(let parts?) = first, parts.count == 2,
                  case .array(let entries?) = parts[1] else {
                caughtUp.store(true, ordering: .relaxed)
                continue
            }
            var largest = 0
            for entry in entries {
                guard case .array(let pair?) = entry, pair.count == 2, let id = pair[0].string, case .array(let kv?) = pair[1] else { continue }
                var fields: [String: ByteBuffer] = [:]
                var bytes = 0
                var i = 0
                while i + 1 < kv.count {
                    if let k = kv[i].string, case .bulkString(let v?) = kv[i + 1] {
                        fields[k] = v
                        bytes &+= v.readableBytes
                    }
                    i += 2
                }
                largest = max(largest, bytes)
                onEntry(id, fields)
                lastID = id
            }
            if entries.count < count { caughtUp.store(true, ordering: .relaxed) }
            count = Self.nextCount(after: count, largest: largest)
        }
    }
}
