import NIOCore
import SluiceDomain

/// The Redis-down policy of ``KeyOperations``, around ``RedisKeyOperations``: while Redis cannot
/// answer, nothing is decided locally — a counter or a hash changed on one instance only would
/// disagree with the others when Redis is back — so the client gets `-TRYAGAIN` (or the error
/// Redis gave) and may retry. The local L1 copy of a touched key is already gone. A hash read
/// is a miss, as a GET is (a cache library then recomputes rather than fails).
public final class FallbackKeyOperations: KeyOperations {
    public let primary: any KeyOperations
    let policy: RedisDownPolicy

    public init(primary: any KeyOperations, policy: RedisDownPolicy) {
        self.primary = primary
        self.policy = policy
    }

    public var answersInOrder: Bool { primary.answersInOrder }

    func guarded<T>(_ answer: Deferred<Result<T, StoreFailure>>, on eventLoop: any EventLoop) -> Deferred<Result<T, StoreFailure>> {
        policy.recover(answer, .cache, on: eventLoop) { error in .ready(.failure(RedisDownPolicy.storeFailure(error))) }
    }

    public func apply(_ operation: KeyOperation, to key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyOperationReply, StoreFailure>> {
        guarded(primary.apply(operation, to: key, now: now, on: eventLoop), on: eventLoop)
    }

    public func hashFields(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<HashRead, StoreFailure>> {
        policy.recover(primary.hashFields(key, now: now, on: eventLoop), .cache, on: eventLoop) { _ in .ready(.success(.absent)) }
    }

    public func kind(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<EntryKind?, StoreFailure>> {
        guarded(primary.kind(key, now: now, on: eventLoop), on: eventLoop)
    }

    public func scan(from cursor: UInt64, count: Int, kind: EntryKind?, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyScan, StoreFailure>> {
        guarded(primary.scan(from: cursor, count: count, kind: kind, now: now, on: eventLoop), on: eventLoop)
    }

    public func keys(matching pattern: GlobPattern, limit: Int, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<[ByteBuffer]?, StoreFailure>> {
        guarded(primary.keys(matching: pattern, limit: limit, now: now, on: eventLoop), on: eventLoop)
    }

    public func flush(now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        guarded(primary.flush(now: now, on: eventLoop), on: eventLoop)
    }
}
