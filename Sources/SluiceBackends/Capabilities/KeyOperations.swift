import NIOCore
import SluiceDomain

/// The Redis commands beyond GET/SET that libraries built for Redis send (LiteLLM, LangChain's
/// RedisCache, aiocache, Flask-Caching): read-modify-writes of one key, the hash reads, TYPE,
/// SCAN and FLUSHDB. Written once against this, as the plain cache commands are against
/// ``ExactCache``, over the same entries.
///
/// Implementations: ``EmbeddedKeyOperations`` (decided in this process under the key's shard
/// lock, persisted like any write), ``RedisKeyOperations`` (Redis decides: it runs the same
/// command) and ``FallbackKeyOperations``, the Redis-down policy around the Redis one.
public protocol KeyOperations: Sendable {
    /// Whether an answer that comes later has already taken its place among the requests its
    /// connection sent after it. True in shared mode (Redis runs a connection's commands in the
    /// order they were sent); false in the embedded mode, where an operation on a value only the
    /// file holds is decided when the file has been read — so the server holds the connection's
    /// next request until then, as Redis would have run them in order.
    var answersInOrder: Bool { get }

    /// Applies `operation` atomically; a failure when the store could not take the change.
    func apply(_ operation: KeyOperation, to key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyOperationReply, StoreFailure>>

    /// A hash's fields (HGET, HGETALL, ...).
    func hashFields(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<HashRead, StoreFailure>>

    /// What the key holds (TYPE); nil when there is no such key.
    func kind(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<EntryKind?, StoreFailure>>

    /// One page of SCAN: up to about `count` keys (of `kind` only, when given) after `cursor`.
    func scan(from cursor: UInt64, count: Int, kind: EntryKind?, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyScan, StoreFailure>>

    /// Every key `pattern` matches (KEYS); nil when there are more than `limit`.
    func keys(matching pattern: GlobPattern, limit: Int, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<[ByteBuffer]?, StoreFailure>>

    /// Deletes every exact-cache key (FLUSHDB / FLUSHALL); how many there were.
    func flush(now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>>
}

/// A hash read's answer.
public enum HashRead: Sendable, Equatable {
    case absent
    case fields(HashFields)
    /// The key holds a string.
    case wrongType
}

/// A SCAN page.
public enum KeyScan: Sendable {
    /// The next cursor (0: the iteration is complete) and this page's keys.
    case page(next: UInt64, keys: [ByteBuffer])
    /// A cursor this server never gave, or has forgotten (see ``ScanCursors``).
    case invalidCursor
}
