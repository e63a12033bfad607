import NIOCore
import SluiceDomain

/// The exact-match cache as commands see it: L1 (``Keyspace``) in front of an optional
/// ``L2Store``. Reads answer from memory when they can and return a future only when a value
/// must come from the L2; writes go to L1 at once and to the L2 behind it.
public final class TieredCache: Sendable {
    public let keyspace: Keyspace
    public let l2: (any L2Store)?

    public init(keyspace: Keyspace, l2: (any L2Store)?) {
        self.keyspace = keyspace
        self.l2 = l2
    }

    public enum Layer: String, Sendable { case l1, l2 }

    public enum Read {
        case hit(CachedValue, EntryMeta, Layer)
        case miss
        /// The value is being fetched from the L2; nil = it was gone after all.
        case fetching(EventLoopFuture<(ByteBuffer, EntryMeta)?>)
    }

    @inlinable
    public func hash(_ key: ByteBuffer) -> UInt64 { keyspace.hasher.hash(key) }

    public func read(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Read {
        let hash = hash(key)
        let read = keyspace.withShard(hash: hash) { $0.read(key, hash: hash, now: now) }
        switch read {
        case .hit(let value, let meta):
            return .hit(value, meta, .l1)
        case .miss:
            return .miss
        case .inL2(let version):
            return .fetching(fetch(key, hash: hash, version: version, now: now, on: eventLoop))
        }
    }

    /// Fetches from the L2 and promotes the value into L1. L2 errors count as a miss: the
    /// client gets an answer, not an error, when the L2 stumbles.
    func fetch(_ key: ByteBuffer, hash: UInt64, version: UInt64?, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<(ByteBuffer, EntryMeta)?> {
        guard let l2 else { return eventLoop.makeSucceededFuture(nil) }
        let owned = Self.copy(key)
        return l2.fetch(owned, now: now, on: eventLoop).map { [keyspace] found in
            keyspace.withShard(hash: hash) { shard in
                if let (value, meta) = found {
                    shard.promote(owned, hash: hash, value: value, meta: meta, version: version)
                } else {
                    shard.countL2Miss()
                }
            }
            return found
        }.recover { [keyspace] _ in
            keyspace.withShard(hash: hash) { $0.countL2Miss() }
            return nil
        }
    }

    public enum Condition: Sendable { case always, ifAbsent, ifPresent }

    /// Stores a value in L1 and the L2. false: the condition refused it.
    @discardableResult
    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: Condition = .always, now: Int64) -> Bool {
        // Copies made before taking the lock, so that neither layer keeps the connection's read
        // buffer alive: an exact-size entry for L1, and (short-lived) buffers for the L2 queue.
        let entry = S3FIFOCache.entry(key: key, value: value)
        let hash = hash(key)
        let written = keyspace.withShard(hash: hash) { shard -> Bool in
            switch condition {
            case .always: break
            case .ifAbsent: if shard.expiry(key, hash: hash, now: now) != nil { return false }
            case .ifPresent: if shard.expiry(key, hash: hash, now: now) == nil { return false }
            }
            shard.write(entry: entry, keyLength: key.readableBytes, hash: hash, meta: meta)
            return true
        }
        if written, let l2 { l2.store(Self.copy(key), value: Self.copy(value), meta: meta) }
        return written
    }

    /// true: a live key was removed.
    public func delete(_ key: ByteBuffer, now: Int64) -> Bool {
        let hash = hash(key)
        let existed = keyspace.withShard(hash: hash) { $0.delete(key, hash: hash, now: now) }
        if existed || keyspace.tracksL2 == false { l2?.delete(Self.copy(key)) }
        return existed
    }

    /// Expiry of a live key: nil = absent, 0 = never.
    public func expiry(_ key: ByteBuffer, now: Int64) -> Int64? {
        let hash = hash(key)
        return keyspace.withShard(hash: hash) { $0.expiry(key, hash: hash, now: now) }
    }

    public static func copy(_ buffer: ByteBuffer) -> ByteBuffer {
        var owned = ByteBuffer()
        owned.writeImmutableBuffer(buffer)
        return owned
    }
}
