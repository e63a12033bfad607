import NIOCore
import SluiceBackends
import SluiceDomain

/// The exact-match cache as commands see it: L1 (``Keyspace``) in front of an optional
/// ``L2Store``. Reads answer from memory when they can and return a future only when a value
/// must come from the L2; writes go to L1 at once and to the L2 behind it.
public final class TieredCache: Sendable {
    public let keyspace: Keyspace
    public let l2: (any L2Store)?
    /// Set in shared mode (`--redis`): Redis is the authority; L1 is a copy kept fresh by
    /// invalidations.
    public let shared: RedisCacheStore?

    public init(keyspace: Keyspace, l2: (any L2Store)?) {
        self.keyspace = keyspace
        self.l2 = l2
        self.shared = l2 as? RedisCacheStore
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
            // Without a local directory (shared L2) an L1 miss must ask the L2.
            if shared != nil { return .fetching(fetch(key, hash: hash, version: nil, now: now, on: eventLoop)) }
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
        }.recover { [keyspace, shared] _ in
            keyspace.withShard(hash: hash) { $0.countL2Miss() }
            shared?.countFallback()
            return nil
        }
    }

    public enum Condition: Sendable { case always, ifAbsent, ifPresent }

    /// Stores a value in L1 and the L2. false: the condition refused it.
    @discardableResult
    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: Condition = .always, now: Int64) -> Bool {
        let written = writeLocal(key, value: value, meta: meta, condition: condition, now: now)
        if written, let l2 { l2.store(Self.copy(key), value: Self.copy(value), meta: meta) }
        return written
    }

    /// L1 (and the directory) only.
    @discardableResult
    func writeLocal(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: Condition, now: Int64) -> Bool {
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
        return written
    }

    // MARK: Shared mode (Redis decides; L1 follows; Redis down: L1 alone answers)

    /// SET through Redis. Replies only after Redis stored it, so a read on another instance
    /// right after sees it. NX/XX are decided by Redis, atomically across instances.
    public func writeShared(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: Condition, now: Int64,
                            on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let shared = shared!
        let key = Self.copy(key), value = Self.copy(value)
        if condition == .always { writeLocal(key, value: value, meta: meta, condition: .always, now: now) }
        let flag: String? = condition == .ifAbsent ? "NX" : condition == .ifPresent ? "XX" : nil
        return shared.write(key, value: value, meta: meta, condition: flag, now: now, on: eventLoop).map { stored in
            if stored && condition != .always { self.writeLocal(key, value: value, meta: meta, condition: .always, now: now) }
            return stored
        }.recover { _ in
            shared.countFallback()
            return condition == .always || self.writeLocal(key, value: value, meta: meta, condition: condition, now: now)
        }
    }

    /// DEL through Redis; how many existed there (Redis down: in L1).
    public func deleteShared(_ keys: [ByteBuffer], now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let shared = shared!
        let keys = keys.map(Self.copy)
        let local = keys.filter { deleteLocal($0, now: now) }.count
        return shared.remove(keys, on: eventLoop).recover { _ in
            shared.countFallback()
            return local
        }
    }

    public func existsShared(_ keys: [ByteBuffer], now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let shared = shared!
        let local = keys.filter { expiry($0, now: now) != nil }.count
        return shared.exists(keys.map(Self.copy), on: eventLoop).recover { _ in
            shared.countFallback()
            return local
        }
    }

    /// Redis's PTTL (ms left, -1 no expiry, -2 no key).
    public func pttlShared(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        let shared = shared!
        let local: Int
        switch expiry(key, now: now) {
        case nil: local = -2
        case 0?: local = -1
        case let at?: local = Int(at - now)
        }
        return shared.pttl(Self.copy(key), on: eventLoop).recover { _ in
            shared.countFallback()
            return local
        }
    }

    /// true: a live key was removed.
    public func delete(_ key: ByteBuffer, now: Int64) -> Bool {
        let existed = deleteLocal(key, now: now)
        if existed || keyspace.tracksL2 == false { l2?.delete(Self.copy(key)) }
        return existed
    }

    /// L1 (and the directory) only.
    func deleteLocal(_ key: ByteBuffer, now: Int64) -> Bool {
        let hash = hash(key)
        return keyspace.withShard(hash: hash) { $0.delete(key, hash: hash, now: now) }
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
