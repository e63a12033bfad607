import NIOCore

/// The second cache layer behind L1: a store shared across restarts (SQLite) or across
/// instances (Redis). Writes are fire-and-forget from the caller's view; reads complete a
/// future on the caller's event loop and never block it.
public protocol L2Store: Sendable {
    /// Value and metadata of a live key, or nil.
    func fetch(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<(ByteBuffer, EntryMeta)?>
    func store(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta)
    func delete(_ key: ByteBuffer)
    /// Label for INFO / STATS ("sqlite", "redis").
    var kind: String { get }
    /// Counters for STATS, as (name, value).
    func statistics() -> [(String, Int)]
}
