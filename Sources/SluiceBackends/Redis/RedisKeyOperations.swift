import NIOCore
import SluiceDomain
import SluiceProtocol

/// ``KeyOperations`` in shared mode: Redis decides, by running the same command on the entry's
/// key (`sluice:c:{key}`), so replies and errors are Redis's own. The counters and APPEND go
/// through `plain_op.lua`, which first strips the header Sluice stores values with. Hashes are
/// Redis hashes under the same name, so GET on one is Redis's WRONGTYPE.
///
/// L1 keeps no copy of what these commands touch: the local copy is dropped before Redis is
/// asked and again after it answered (a read in between cannot put the old value back), and the
/// other instances are told to drop theirs.
///
/// SCAN walks Redis's own SCAN (MATCH `sluice:c:*`), master after master in a cluster: the
/// cursor is Redis's shifted left by 10 bits, with the master's index (by address) in the low
/// bits. A cluster whose masters change during an iteration may repeat or skip keys.
public final class RedisKeyOperations: KeyOperations {
    public let cache: RedisExactCache
    static let nodeBits: UInt64 = 10
    /// Keys a FLUSHDB deletes per step.
    static let flushPage = 1000

    public init(cache: RedisExactCache) {
        self.cache = cache
    }

    var client: RedisClient { cache.client }

    public var answersInOrder: Bool { true }

    enum Word {
        static let getdel = ByteBuffer(string: "GETDEL"), getex = ByteBuffer(string: "GETEX"), set = ByteBuffer(string: "SET")
        static let pxat = ByteBuffer(string: "PXAT"), persist = ByteBuffer(string: "PERSIST"), keepttl = ByteBuffer(string: "KEEPTTL")
        static let nx = ByteBuffer(string: "NX"), xx = ByteBuffer(string: "XX"), gt = ByteBuffer(string: "GT"), lt = ByteBuffer(string: "LT")
        static let get = ByteBuffer(string: "GET"), pexpire = ByteBuffer(string: "PEXPIRE"), del = ByteBuffer(string: "DEL")
        static let hset = ByteBuffer(string: "HSET"), hsetnx = ByteBuffer(string: "HSETNX"), hdel = ByteBuffer(string: "HDEL")
        static let hgetall = ByteBuffer(string: "HGETALL"), type = ByteBuffer(string: "TYPE"), scan = ByteBuffer(string: "SCAN")
        static let match = ByteBuffer(string: "MATCH"), count = ByteBuffer(string: "COUNT"), pattern = ByteBuffer(string: RedisExactCache.keyPrefix + "*")
        static let incrby = ByteBuffer(string: "INCRBY"), incrbyfloat = ByteBuffer(string: "INCRBYFLOAT"), append = ByteBuffer(string: "APPEND")
    }

    // MARK: Read-modify-write

    public func apply(_ operation: KeyOperation, to key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyOperationReply, StoreFailure>> {
        let key = ByteBuffer.owned(key)
        let main = RedisExactCache.redisKey(key)
        dropLocal(key)
        let header = RedisExactCache.pack(ByteBuffer(), EntryMeta(createdAt: now.wall))
        // A changed or deleted entry's stale copy must not answer for it (CACHE.GET ... STALE).
        if cache.keyspace.staleRetention > 0, !operation.onlyReads {
            _ = client.send([Word.del, RedisExactCache.staleKey(key)], on: eventLoop)
        }
        /// How Redis's reply reads: a stored value (header stripped) or as it is.
        var storedValue = false
        let sent: EventLoopFuture<RESPValue>
        switch operation {
        case .incrementBy(let by):
            sent = LuaScripts.plainOperation.run(client, keys: [main], arguments: [Word.incrby, ByteBuffer(string: String(by)), header], on: eventLoop)
        case .incrementByFloat(_, let text):
            sent = LuaScripts.plainOperation.run(client, keys: [main], arguments: [Word.incrbyfloat, ByteBuffer(bytes: text), header], on: eventLoop)
        case .append(let tail):
            sent = LuaScripts.plainOperation.run(client, keys: [main], arguments: [Word.append, ByteBuffer(bytes: tail), header], on: eventLoop)
        case .getAndDelete:
            storedValue = true
            sent = client.send([Word.getdel, main], on: eventLoop)
            _ = client.send([Word.del, RedisExactCache.leaseKey(key)], on: eventLoop)
        case .getAndExpire(_, let options):
            storedValue = true
            // The client's own words: Redis checks and applies them, on its clock.
            sent = client.send([Word.getex, main] + options.map { ByteBuffer(bytes: $0) }, on: eventLoop)
        case .set(let value, let expiry, let condition, let returnOld):
            storedValue = returnOld
            var args = [Word.set, main, RedisExactCache.pack(ByteBuffer(bytes: value), EntryMeta(createdAt: now.wall))]
            switch expiry {
            case .unchanged, .persist, .invalid: break
            case .keep: args.append(Word.keepttl)
            case .at(let at): args += [Word.pxat, ByteBuffer(string: String(at))]
            }
            if condition == .ifAbsent { args.append(Word.nx) }
            if condition == .ifPresent { args.append(Word.xx) }
            if returnOld { args.append(Word.get) }
            sent = client.send(args, on: eventLoop)
        case .expire(let at, let condition):
            // Relative, so that Redis's clock, not this instance's, starts the count (a
            // skewed instance would otherwise move every TTL it sets).
            var args = [Word.pexpire, main, ByteBuffer(string: String(at.subtractingSaturating(now.wall)))]
            switch condition {
            case .always: break
            case .ifNone: args.append(Word.nx)
            case .ifSet: args.append(Word.xx)
            case .ifLater: args.append(Word.gt)
            case .ifEarlier: args.append(Word.lt)
            }
            sent = client.send(args, on: eventLoop)
        case .persist:
            sent = client.send([Word.persist, main], on: eventLoop)
        case .hashSet(let pairs, let onlyIfNew):
            var args = [onlyIfNew ? Word.hsetnx : Word.hset, main]
            args.reserveCapacity(2 + 2 * pairs.count)
            for pair in pairs { args += [ByteBuffer(bytes: pair.field), ByteBuffer(bytes: pair.value)] }
            sent = client.send(args, on: eventLoop)
        case .hashDelete(let fields):
            sent = client.send([Word.hdel, main] + fields.map { ByteBuffer(bytes: $0) }, on: eventLoop)
        }
        let isIncrement: Bool
        if case .incrementBy = operation { isIncrement = true } else { isIncrement = false }
        return .later(sent.map { [self] reply in
            dropLocal(key)
            cache.invalidations.publish(key, on: eventLoop)
            // plain_op.lua answers INCRBY with the stored text (exact past 2^53).
            if isIncrement, case .bulkString(let text?) = reply, let n = RedisNumbers.integer(text.readableBytesView) { return .success(.integer(n)) }
            return .success(Self.reply(reply, storedValue: storedValue, now: now.wall))
        })
    }

    func dropLocal(_ key: ByteBuffer) {
        let hash = cache.keyspace.hasher.hash(key)
        cache.keyspace.withShard(hash: hash) { $0.dropL1(key, hash: hash) }
    }

    static func reply(_ reply: RESPValue, storedValue: Bool, now: Int64) -> KeyOperationReply {
        switch reply {
        case .integer(let n): return .integer(Int64(n))
        case .simpleString: return .ok
        case .error(let line): return .error(line)
        case .bulkString(nil): return .bulk(nil)
        case .bulkString(let stored?):
            guard storedValue else { return .bulk(Array(stored.readableBytesView)) }
            return .bulk(Array(RedisExactCache.unpack(stored, expiresAt: 0, now: now).0.readableBytesView))
        default: return .error("ERR unexpected reply from the shared store (Redis)")
        }
    }

    // MARK: Reads

    public func hashFields(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<HashRead, StoreFailure>> {
        .later(client.send([Word.hgetall, RedisExactCache.redisKey(key)], on: eventLoop).map { reply in
            switch reply {
            case .array(let items?), .map(let items):
                if items.isEmpty { return .success(.absent) }
                var fields = HashFields()
                var i = 0
                while i + 1 < items.count {
                    if case .bulkString(let f?) = items[i], case .bulkString(let v?) = items[i + 1] {
                        fields.set(Array(f.readableBytesView), Array(v.readableBytesView))
                    }
                    i += 2
                }
                return .success(.fields(fields))
            case .error(let line) where line.hasPrefix("WRONGTYPE"):
                return .success(.wrongType)
            case .error(let line):
                return .failure(.refused(line))
            default:
                return .failure(.refused("unexpected HGETALL reply"))
            }
        })
    }

    public func kind(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<EntryKind?, StoreFailure>> {
        .later(client.send([Word.type, RedisExactCache.redisKey(key)], on: eventLoop).map { reply in
            switch reply {
            case .simpleString("string"): return .success(.string)
            case .simpleString("hash"): return .success(.hash)
            case .simpleString: return .success(nil)
            case .error(let line): return .failure(.refused(line))
            default: return .failure(.refused("unexpected TYPE reply"))
            }
        })
    }

    // MARK: SCAN, FLUSHDB

    public func scan(from cursor: UInt64, count: Int, kind: EntryKind?, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyScan, StoreFailure>> {
        let masters = UInt64(client.masterCount)
        let node = client.isCluster ? cursor & ((1 << Self.nodeBits) - 1) : 0
        let redisCursor = client.isCluster ? cursor >> Self.nodeBits : cursor
        guard node < max(masters, 1) else { return .ready(.success(.invalidCursor)) }
        var args = [Word.scan, ByteBuffer(string: String(redisCursor)), Word.match, Word.pattern, Word.count, ByteBuffer(string: String(max(1, min(count, 100_000))))]
        if let kind { args += [Word.type, ByteBuffer(string: kind.typeName)] }
        guard let sent = client.send(toMaster: Int(node), args, on: eventLoop) else { return .ready(.success(.invalidCursor)) }
        let isCluster = client.isCluster
        return .later(sent.map { reply -> Result<KeyScan, StoreFailure> in
            guard case .array(let parts?) = reply, parts.count == 2, case .bulkString(let c?) = parts[0],
                  let next = UInt64(String(buffer: c)), case .array(let names?) = parts[1] else {
                if case .error(let line) = reply {
                    return line.contains("invalid cursor") ? .success(.invalidCursor) : .failure(.refused(line))
                }
                return .failure(.refused("unexpected SCAN reply"))
            }
            let keys = names.compactMap { name -> ByteBuffer? in
                guard case .bulkString(let n?) = name else { return nil }
                return Self.userKey(n)
            }
            guard isCluster else { return .success(.page(next: next, keys: keys)) }
            // This master is done: the next one from 0; the last one done: the whole scan is.
            if next == 0 {
                return .success(.page(next: node + 1 < masters ? node + 1 : 0, keys: keys))
            }
            guard next < (1 << (64 - Self.nodeBits)) else { return .failure(.refused("a Redis SCAN cursor too large to combine with the master's index")) }
            return .success(.page(next: next << Self.nodeBits | node, keys: keys))
        })
    }

    /// The client's key from a Redis name made by ``HashSlot/tagged(_:_:)``: `sluice:c:{key}`,
    /// or `sluice:c:{#<hash>}key` for a key with braces or an empty one.
    static func userKey(_ name: ByteBuffer) -> ByteBuffer? {
        let prefix = RedisExactCache.keyPrefix.utf8.count
        let bytes = name.readableBytesView
        guard bytes.count >= prefix + 2, bytes[bytes.startIndex + prefix] == UInt8(ascii: "{") else { return nil }
        let inner = bytes.index(bytes.startIndex, offsetBy: prefix + 1)
        guard let close = bytes[inner...].firstIndex(of: UInt8(ascii: "}")) else { return nil }
        if close == bytes.index(before: bytes.endIndex) {
            let tag = Array(bytes[inner..<close])
            // `{#<hash of "">}` is the empty key's name (see HashSlot.tagged).
            if tag == Array(("#" + String(HashSlot.fnv1a(ByteBuffer()), radix: 16)).utf8) { return ByteBuffer() }
            return ByteBuffer(bytes: tag)
        }
        return ByteBuffer(bytes: bytes[bytes.index(after: close)...])
    }

    public func keys(matching pattern: GlobPattern, limit: Int, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<[ByteBuffer]?, StoreFailure>> {
        .later(collectKeys(cursor: 0, into: KeyCollector(pattern: pattern, limit: limit), now: now, on: eventLoop))
    }

    /// KEYS: SCAN pages (every master's, in a cluster) until the walk ends or too many match.
    func collectKeys(cursor: UInt64, into collector: KeyCollector, now: Timestamp, on eventLoop: any EventLoop) -> EventLoopFuture<Result<[ByteBuffer]?, StoreFailure>> {
        scan(from: cursor, count: Self.flushPage, kind: nil, now: now, on: eventLoop).future(on: eventLoop).flatMap { [self] result in
            switch result {
            case .failure(let failure): return eventLoop.makeSucceededFuture(.failure(failure))
            case .success(.invalidCursor): return eventLoop.makeSucceededFuture(.failure(.refused("the cluster's masters changed during KEYS; try again")))
            case .success(.page(let next, let keys)):
                for key in keys where !collector.add(key) { return eventLoop.makeSucceededFuture(.success(nil)) }
                if next == 0 { return eventLoop.makeSucceededFuture(.success(collector.found)) }
                return self.collectKeys(cursor: next, into: collector, now: now, on: eventLoop)
            }
        }
    }

    public func flush(now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        .later(flushStep(cursor: 0, deleted: 0, now: now, on: eventLoop))
    }

    /// One SCAN page's keys deleted (entry, lease and stale copy), then the next page.
    func flushStep(cursor: UInt64, deleted: Int, now: Timestamp, on eventLoop: any EventLoop) -> EventLoopFuture<Result<Int, StoreFailure>> {
        scan(from: cursor, count: Self.flushPage, kind: nil, now: now, on: eventLoop).future(on: eventLoop).flatMap { [self] result in
            guard case .success(let scan) = result else {
                if case .failure(let failure) = result { return eventLoop.makeSucceededFuture(.failure(failure)) }
                return eventLoop.makeSucceededFuture(.success(deleted))
            }
            guard case .page(let next, let keys) = scan else { return eventLoop.makeSucceededFuture(.success(deleted)) }
            // One DEL per key: its three names share a hash tag, so it runs in one slot.
            let removed = keys.map { key -> EventLoopFuture<RESPValue> in
                dropLocal(key)
                return client.send([Word.del, RedisExactCache.redisKey(key), RedisExactCache.leaseKey(key), RedisExactCache.staleKey(key)], on: eventLoop)
            }
            return EventLoopFuture.whenAllComplete(removed, on: eventLoop).flatMap { [self] results in
                var n = deleted
                for case .success(.integer(let k)) in results where k > 0 { n += 1 }
                if let failed = results.first(where: { if case .failure = $0 { return true } else { return false } }), case .failure(let error) = failed {
                    return eventLoop.makeFailedFuture(error)
                }
                for key in keys { cache.invalidations.publish(key, on: eventLoop) }
                guard next != 0 else { return eventLoop.makeSucceededFuture(.success(n)) }
                return self.flushStep(cursor: next, deleted: n, now: now, on: eventLoop)
            }
        }
    }
}
