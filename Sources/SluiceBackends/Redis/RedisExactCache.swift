import Logging
import NIOCore
import SluiceDomain
import SluiceProtocol

/// The exact cache in shared mode: Redis is the authority that every instance reads and writes;
/// this process's L1 keeps copies, dropped when another instance writes the key.
///
/// - Reads answer from L1 when they can; otherwise GET + PTTL (one round trip, pipelined) and
///   the value is copied into L1. A lease after a miss is `take_lease.lua` (SET sluice:lease:{<key>} token NX PX unless the entry exists now),
///   cluster-wide.
/// - Writes reply after Redis stored them, so a read on another instance right after sees them.
///   An unconditional write goes into L1 first (a pipelined GET on the same connection reads
///   it back at once); NX/XX and leased writes are decided by Redis and reach L1 after it agreed.
/// - Deletes drop the L1 copy first, then DEL in Redis (the key and its lease).
///
/// Layout: `sluice:c:{<key>}` (see ``HashSlot/tagged(_:_:)``) holds a 27-byte header ("SL1", created-at ms, tokens, cost bits)
/// and the value — or, for an entry stored with a TAG, "SL2", the same fields, the tag's length
/// (one byte) and its name before the value — with Redis's own expiry (PX). A value written there by something else (no
/// header) is served as-is. Redis errors fail the future: ``FallbackExactCache`` decides then.
///
/// Stale reads (`--max-stale`): an entry written with an expiry also gets a copy at
/// `sluice:stale:<key>` — its expiry (8 bytes) and the same packed entry — that Redis keeps for
/// the retention longer. The main key keeps Redis's own semantics (EXISTS, TTL, NX, XX see it
/// expire on time); only `CACHE.GET ... STALE` reads the copy, after the main key missed. A DEL
/// deletes the copy too: a deleted key is never served stale.
public final class RedisExactCache: ExactCache {
    public static let keyPrefix = "sluice:c:"
    public static let leasePrefix = "sluice:lease:"
    public static let stalePrefix = "sluice:stale:"
    static let magic: [UInt8] = Array("SL1".utf8)
    static let taggedMagic: [UInt8] = Array("SL2".utf8)
    static let headerLength = 3 + 8 + 8 + 8
    /// Command words, built once (a ByteBuffer per word per call showed up in profiles).
    enum Word {
        static let set = ByteBuffer(string: "SET"), get = ByteBuffer(string: "GET"), pttl = ByteBuffer(string: "PTTL")
        static let px = ByteBuffer(string: "PX"), del = ByteBuffer(string: "DEL"), exists = ByteBuffer(string: "EXISTS")
        static let nx = ByteBuffer(string: "NX"), xx = ByteBuffer(string: "XX")
        static let zero = ByteBuffer(string: "0"), one = ByteBuffer(string: "1")
    }

    public let keyspace: Keyspace
    public let client: RedisClient
    public let invalidations: RedisInvalidations

    public init(keyspace: Keyspace, client: RedisClient, invalidations: RedisInvalidations) {
        precondition(!keyspace.tracksL2, "in shared mode Redis, not a local directory, knows the keys")
        self.keyspace = keyspace
        self.client = client
        self.invalidations = invalidations
    }

    /// Follows the other instances' writes: drops their keys' L1 copies.
    public func startInvalidations(logger: Logger) {
        let keyspace = keyspace
        invalidations.subscribe(logger: logger, drop: { key in
            let hash = keyspace.hasher.hash(key)
            keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
        }, dropAll: {
            keyspace.forEachShard { $0.clearL1() }
        })
    }

    // MARK: ExactCache

    public func read(_ key: ByteBuffer, lease: Int64, stale: Int64, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<CacheRead> {
        let hash = keyspace.hasher.hash(key)
        let (local, changes) = keyspace.withShard(hash: hash) { ($0.read(key, hash: hash, now: now.wall), $0.changes) }
        if case .hit(let value, let meta) = local { return .ready(.hit(value, meta, .l1)) }
        let owned = ByteBuffer.owned(key)
        let k = Self.redisKey(owned)
        let stale = min(stale, keyspace.staleRetention)
        let value = client.send([Word.get, k], on: eventLoop)
        let ttl = client.send([Word.pttl, k], on: eventLoop)
        // Pipelined with the other two: no round trip more for a stale read.
        let copy = stale > 0 ? client.send([Word.get, Self.staleKey(owned)], on: eventLoop) : eventLoop.makeSucceededFuture(RESPValue.bulkString(nil))
        let keyspace = keyspace
        return .later(value.and(ttl).and(copy).flatMapThrowing { pair, copy -> (RESPValue, RESPValue, RESPValue) in
            // A hash (HSET) under this name: Redis's WRONGTYPE, passed on as a hit of kind hash
            // for the command to refuse as redis-server would.
            if case .error(let line) = pair.0, line.hasPrefix("WRONGTYPE") { return (pair.0, .integer(-1), copy) }
            return (try Self.checked(pair.0), try Self.checked(pair.1), copy)
        }.flatMap { [self] value, ttl, copy -> EventLoopFuture<CacheRead> in
            if case .error = value {
                let entry = S3FIFOCache.entry(key: owned, value: ByteBuffer())
                return eventLoop.makeSucceededFuture(.hit(CachedValue(entry: entry, keyLength: owned.readableBytes),
                                                          EntryMeta(createdAt: now.wall, kind: .hash), .l2))
            }
            guard case .bulkString(let stored?) = value else {
                if stale > 0, let hit = staleHit(owned, hash: hash, copy: copy, within: stale, now: now.wall) {
                    return eventLoop.makeSucceededFuture(hit)
                }
                keyspace.withShard(hash: hash) { $0.countL2Miss() }
                guard lease > 0 else { return eventLoop.makeSucceededFuture(.miss(lease: nil)) }
                return acquireLease(owned, hash: hash, duration: lease, on: eventLoop).map { .miss(lease: $0) }
            }
            var expiresAt: Int64 = 0
            if case .integer(let ms) = ttl, ms > 0 { expiresAt = now.wall.addingSaturating(Int64(ms)) }
            let (bytes, meta) = Self.unpack(stored, expiresAt: expiresAt, now: now.wall)
            let entry = S3FIFOCache.entry(key: owned, value: bytes)
            keyspace.withShard(hash: hash) {
                $0.promote(entry: entry, keyLength: owned.readableBytes, hash: hash, meta: meta, version: nil, unchangedSince: changes, now: now.wall)
            }
            return eventLoop.makeSucceededFuture(.hit(CachedValue(entry: entry, keyLength: owned.readableBytes), meta, .l2))
        })
    }

    /// After the main key missed: this instance's L1 copy if it expired within the window, else
    /// the Redis copy (`sluice:stale:<key>`) if it did.
    func staleHit(_ key: ByteBuffer, hash: UInt64, copy: RESPValue, within: Int64, now: Int64) -> CacheRead? {
        let local = keyspace.withShard(hash: hash) { $0.readStale(key, hash: hash, now: now, within: within) }
        if case .hit(let value, let meta) = local { return .hit(value, meta, .stale) }
        guard case .bulkString(var stored?) = copy, let expiresAt = stored.readInteger(as: Int64.self),
              expiresAt > now.subtractingSaturating(within) else { return nil }
        let (bytes, meta) = Self.unpack(stored, expiresAt: expiresAt, now: now)
        keyspace.withShard(hash: hash) { $0.counters.staleHits += 1 }
        let entry = S3FIFOCache.entry(key: key, value: bytes)
        return .hit(CachedValue(entry: entry, keyLength: key.readableBytes), meta, meta.isExpired(at: now) ? .stale : .l2)
    }

    /// The stale copy of an entry written with an expiry (nil: none is kept).
    func staleCopy(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, px: Int64) -> [ByteBuffer]? {
        guard px > 0, keyspace.staleRetention > 0 else { return nil }
        var stored = ByteBuffer()
        stored.writeInteger(meta.expiresAt)
        var packed = Self.pack(value, meta)
        stored.writeBuffer(&packed)
        return [Word.set, Self.staleKey(key), stored, Word.px, ByteBuffer(string: String(px.addingSaturating(keyspace.staleRetention)))]
    }

    /// One lease per key across all instances: `take_lease.lua` (SET NX PX, unless the entry
    /// has been stored since the read missed). The token, when this caller holds it now.
    func acquireLease(_ key: ByteBuffer, hash: UInt64, duration: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<UInt64?> {
        let token = LeaseToken.random()
        return LuaScripts.takeLease.run(client, keys: [Self.redisKey(key), Self.leaseKey(key)],
                                        arguments: [ByteBuffer(string: String(token)), ByteBuffer(string: String(duration))],
                                        on: eventLoop).flatMapThrowing { [keyspace] reply in
            guard case .integer(let outcome) = try Self.checked(reply) else { throw RedisError.unexpectedReply("take_lease: \(reply)") }
            // -1: the answer was stored meanwhile; the caller reads it on its next poll.
            let granted = outcome == 1
            keyspace.withShard(hash: hash) { shard in
                if granted { shard.counters.leasesGranted += 1 } else { shard.counters.leaseWaits += 1 }
            }
            return granted ? token : nil
        }
    }

    public func write(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, now: Timestamp,
                      on eventLoop: any EventLoop) -> Deferred<CacheWrite> {
        let key = ByteBuffer.owned(key), value = ByteBuffer.owned(value)
        let px = meta.expiresAt == 0 ? 0 : max(meta.expiresAt - now.wall, 1)
        // What Redis did: stored, or which refusal.
        let stored: EventLoopFuture<CacheWrite>
        switch condition {
        case .always, .ifAbsent, .ifPresent:
            if condition == .always { writeL1(key, value: value, meta: meta) }
            var args = [Word.set, Self.redisKey(key), Self.pack(value, meta)]
            if px > 0 { args += [Word.px, ByteBuffer(string: String(px))] }
            if condition == .ifAbsent { args.append(Word.nx) }
            if condition == .ifPresent { args.append(Word.xx) }
            let main = client.send(args, on: eventLoop)
            // The stale copy of an unconditional write goes in the same pipeline; its reply is
            // not waited for (a stale copy is a best effort, never an acknowledged write).
            if condition == .always, let copy = staleCopy(key, value: value, meta: meta, px: px) { _ = client.send(copy, on: eventLoop) }
            stored = main.flatMapThrowing { reply in
                switch reply {
                case .simpleString: return .stored
                case .bulkString(nil): return .notStored
                case .error(let message): throw RedisError.errorReply(message)
                default: throw RedisError.unexpectedReply("SET: \(reply)")
                }
            }
        case .leaseHolder(let token), .copy(let token):
            stored = LuaScripts.leasedWrite.run(client, keys: [Self.redisKey(key), Self.leaseKey(key)],
                                                arguments: [Self.pack(value, meta), ByteBuffer(string: String(token)), ByteBuffer(string: String(px)),
                                                            condition.isReaderCopy ? Word.one : Word.zero],
                                                on: eventLoop).flatMapThrowing { reply in
                guard case .integer(let n) = try Self.checked(reply) else { throw RedisError.unexpectedReply("leased write: \(reply)") }
                switch n {
                case 1: return .stored
                case 0: return .leaseRefused
                default: return .notStored
                }
            }
        }
        // A conditional write reaches L1 only after Redis agreed — and only if nothing in the
        // key's shard changed meanwhile: a later write (a plain SET pipelined right after a
        // SETNX) may already be in L1 and in Redis, and must not be covered by the older value.
        let hash = keyspace.hasher.hash(key)
        let changesBefore = condition == .always ? 0 : keyspace.withShard(hash: hash) { $0.changes }
        return .later(stored.map { [self] stored -> CacheWrite in
            guard case .stored = stored else { return stored }
            if condition != .always {
                let entry = S3FIFOCache.entry(key: key, value: value)
                keyspace.withShard(hash: hash) { shard in
                    if shard.changes == changesBefore {
                        shard.write(entry: entry, keyLength: key.readableBytes, hash: hash, meta: meta)
                    } else {
                        shard.dropL1(key, hash: hash)
                    }
                }
                // Not for a reader's copy: STALE never serves one, and it would cover the stale
                // copy of an answer that STALE would serve.
                if !condition.isReaderCopy, let copy = staleCopy(key, value: value, meta: meta, px: px) { _ = client.send(copy, on: eventLoop) }
            }
            invalidations.publish(key, on: eventLoop)
            return .stored
        })
    }

    func writeL1(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta) {
        let entry = S3FIFOCache.entry(key: key, value: value)
        let hash = keyspace.hasher.hash(key)
        keyspace.withShard(hash: hash) { $0.write(entry: entry, keyLength: key.readableBytes, hash: hash, meta: meta) }
    }

    public func delete(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        let keys = keys.map(ByteBuffer.owned)
        for key in keys {
            let hash = keyspace.hasher.hash(key)
            _ = keyspace.withShard(hash: hash) { $0.delete(key, hash: hash, now: now.wall) }
        }
        let removed = client.send([Word.del] + keys.map(Self.redisKey), on: eventLoop)
        let leases = client.send([Word.del] + keys.map(Self.leaseKey) + (keyspace.staleRetention > 0 ? keys.map(Self.staleKey) : []),
                                 on: eventLoop)
        return .later(removed.and(leases).flatMapThrowing { [self] reply, _ in
            guard case .integer(let n) = try Self.checked(reply) else { throw RedisError.unexpectedReply("DEL: \(reply)") }
            for key in keys { invalidations.publish(key, on: eventLoop) }
            return .success(n)
        })
    }

    public func deleteKeepingLease(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        let key = ByteBuffer.owned(key)
        // This instance's L1 copy only (its shard's leases are the fallback's while Redis is
        // down); in Redis the entry and its stale copy, which share the key's hash tag — the
        // lease key stays.
        let hash = keyspace.hasher.hash(key)
        keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
        let keys = [Self.redisKey(key)] + (keyspace.staleRetention > 0 ? [Self.staleKey(key)] : [])
        return .later(client.send([Word.del] + keys, on: eventLoop).flatMapThrowing { [self] reply in
            guard case .integer(let n) = try Self.checked(reply) else { throw RedisError.unexpectedReply("DEL: \(reply)") }
            invalidations.publish(key, on: eventLoop)
            return .success(n > 0)
        })
    }

    public func deleteUnlessLeased(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Bool, StoreFailure>> {
        let key = ByteBuffer.owned(key)
        // This instance's L1 copy goes first (a live lease means Redis holds no entry anyway) —
        // its copy only: the shard's own leases are the fallback's while Redis is down, and a
        // delete would end one.
        let hash = keyspace.hasher.hash(key)
        keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
        let answer = LuaScripts.retireUnlessLeased.run(client, keys: [Self.redisKey(key), Self.leaseKey(key), Self.staleKey(key)],
                                                       arguments: [], on: eventLoop)
        return .later(answer.flatMapThrowing { [self] reply in
            guard case .integer(let n) = try Self.checked(reply) else { throw RedisError.unexpectedReply("retire: \(reply)") }
            if n == 1 { invalidations.publish(key, on: eventLoop) }
            return .success(n == 1)
        })
    }

    public func exists(_ keys: [ByteBuffer], now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Int> {
        .later(client.send([Word.exists] + keys.map(Self.redisKey), on: eventLoop).flatMapThrowing { reply in
            guard case .integer(let n) = try Self.checked(reply) else { throw RedisError.unexpectedReply("EXISTS: \(reply)") }
            return n
        })
    }

    public func timeToLive(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<TimeToLive> {
        .later(client.send([Word.pttl, Self.redisKey(key)], on: eventLoop).flatMapThrowing { reply in
            guard case .integer(let ms) = try Self.checked(reply) else { throw RedisError.unexpectedReply("PTTL: \(reply)") }
            switch ms {
            case -2: return .absent
            case -1: return .forever
            default: return .milliseconds(Int64(ms))
            }
        })
    }

    /// Redis takes them: its connection's own queue is bounded and refuses with TRYAGAIN.
    public var takesOptionalWrites: Bool { true }

    public func statistics(now: Int64) -> ExactCacheStatistics {
        let c = client.counters
        var stats = ExactCacheStatistics(keyspace: keyspace.summary(now: now), l1Capacity: keyspace.l1Capacity, backend: "redis", backendCounters: [
            ("redis_connected", client.isConnected ? 1 : 0),
            ("redis_subscribed", invalidations.isSubscribed ? 1 : 0),
            ("redis_commands", c.commands),
            ("redis_failures", c.failures),
            ("redis_connects", c.connects),
            ("redis_disconnects", c.disconnects),
            ("redis_round_trips", c.roundTrips),
            ("redis_round_trip_us", c.roundTripMicroseconds),
            ("redis_invalidations_received", invalidations.receivedCount),
            ("redis_invalidations_lost", invalidations.lostCount),
        ])
        if let nodes = client.clusterNodes {
            // The cluster as this instance routes to it: each master, its slots, its connection.
            stats.backendDetails = [
                ("redis_cluster", "1"),
                // Masters: the nodes that own slots; the others (replicas given as seeds, a failed
                // master) are known and asked for the map, not sent commands.
                ("redis_cluster_nodes", String(nodes.count { $0.slots > 0 })),
                ("redis_cluster_known_nodes", String(nodes.count)),
                ("redis_cluster_slots_covered", String(nodes.reduce(0) { $0 + $1.slots })),
                ("redis_cluster_map_refreshes", String(client.clusterRefreshes)),
                ("redis_cluster_redirections", String(client.clusterRedirections)),
            ] + nodes.enumerated().map { i, n in
                ("redis_cluster_node\(i)", "\(n.address),slots=\(n.slots),connected=\(n.connected ? 1 : 0)")
            }
        }
        return stats
    }

    /// The reply, unless Redis answered with an error.
    static func checked(_ reply: RESPValue) throws -> RESPValue {
        if case .error(let message) = reply { throw RedisError.errorReply(message) }
        return reply
    }

    // MARK: Keys and entry format

    /// `sluice:c:{key}`: the entry, its lease and its stale copy share the key as hash tag, so
    /// a leased write (entry + lease in one script) runs in one cluster slot.
    static func redisKey(_ key: ByteBuffer) -> ByteBuffer { HashSlot.tagged(keyPrefix, key) }

    static func staleKey(_ key: ByteBuffer) -> ByteBuffer { HashSlot.tagged(stalePrefix, key) }

    static func leaseKey(_ key: ByteBuffer) -> ByteBuffer { HashSlot.tagged(leasePrefix, key) }

    static func pack(_ value: ByteBuffer, _ meta: EntryMeta) -> ByteBuffer {
        var b = ByteBuffer()
        let tag = meta.tag == SavingsTags.none ? nil : SavingsTags.shared.name(of: meta.tag).utf8.prefix(255)
        b.reserveCapacity(headerLength + (tag.map { $0.count + 1 } ?? 0) + value.readableBytes)
        b.writeBytes(tag == nil ? magic : taggedMagic)
        b.writeInteger(meta.createdAt)
        b.writeInteger(meta.tokens)
        b.writeInteger(meta.cost.bitPattern)
        if let tag {
            b.writeInteger(UInt8(tag.count))
            b.writeBytes(tag)
        }
        b.writeImmutableBuffer(value)
        return b
    }

    static func unpack(_ stored: ByteBuffer, expiresAt: Int64, now: Int64) -> (ByteBuffer, EntryMeta) {
        guard stored.readableBytes >= headerLength, let kind = stored.getBytes(at: stored.readerIndex, length: 3),
              kind == magic || kind == taggedMagic else {
            return (stored, EntryMeta(createdAt: now, expiresAt: expiresAt))
        }
        let i = stored.readerIndex
        var meta = EntryMeta(createdAt: stored.getInteger(at: i + 3)!, expiresAt: expiresAt,
                             tokens: stored.getInteger(at: i + 11)!, cost: Double(bitPattern: stored.getInteger(at: i + 19)!))
        var header = headerLength
        if kind == taggedMagic {
            // A tag's length byte and name; a value too short for them is served as written.
            guard let length = stored.getInteger(at: i + headerLength, as: UInt8.self),
                  let name = stored.getString(at: i + headerLength + 1, length: Int(length)) else {
                return (stored, EntryMeta(createdAt: now, expiresAt: expiresAt))
            }
            meta.tag = SavingsTags.shared.id(for: name)
            header += 1 + Int(length)
        }
        return (stored.getSlice(at: i + header, length: stored.readableBytes - header)!, meta)
    }
}
