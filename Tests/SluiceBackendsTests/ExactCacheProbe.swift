import NIOCore
import NIOPosix
import SluiceDomain
@testable import SluiceBackends

/// One key of an exact cache, read, written and deleted as LLM.GET's copies, retirements and
/// verdicts do, at one instant: the lease tests of both modes ask the same questions of it.
struct ExactCacheProbe {
    let cache: any ExactCache
    let key: ByteBuffer
    let loop: any EventLoop
    var now = Timestamp(wall: 1_700_000_000_000, monotonic: 1_000)

    init(_ cache: any ExactCache, key: String, loop: any EventLoop) {
        self.cache = cache
        self.key = ByteBuffer(string: key)
        self.loop = loop
    }

    func read(lease: Int64, stale: Int64 = 0, at time: Timestamp? = nil) async throws -> CacheRead {
        try await cache.read(key, lease: lease, stale: stale, now: time ?? now, on: loop).future(on: loop).get()
    }

    func write(_ value: String, _ condition: WriteCondition, expiresAt: Int64 = 0) async throws -> CacheWrite {
        try await cache.write(key, value: ByteBuffer(string: value), meta: EntryMeta(createdAt: now.wall, expiresAt: expiresAt),
                              condition: condition, now: now, on: loop).future(on: loop).get()
    }

    /// The live value, read without asking for a lease.
    func value() async throws -> String? {
        guard case .hit(let value, _, _) = try await read(lease: 0) else { return nil }
        return String(decoding: value.bytes, as: UTF8.self)
    }

    /// `deleteUnlessLeased`: false when a live lease kept the key.
    func retire() async throws -> Bool {
        try await cache.deleteUnlessLeased(key, now: now, on: loop).future(on: loop).get().get()
    }

    func deleteKeepingLease() async throws -> Bool {
        try await cache.deleteKeepingLease(key, now: now, on: loop).future(on: loop).get().get()
    }

    /// A plain delete (ends any lease).
    func clear() async throws {
        _ = try await cache.delete([key], now: now, on: loop).future(on: loop).get()
    }
}
