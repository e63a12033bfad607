import NIOCore
import SluiceDomain

/// ``KeyOperations`` of one process, over ``EmbeddedExactCache``'s entries.
///
/// A read-modify-write is decided under the key's shard lock, as a GET and a SET are, so it is
/// atomic among all connections. When the value is only in the file (L1 evicted it), it is read
/// on the store's reader threads first and the operation is decided when the answer arrives —
/// if the key's version has not moved meanwhile; if it has, the operation starts over (a few
/// times at most: each retry means another write to this key got in first).
///
/// SCAN walks keys in bytewise order — the file's, after the writes queued when the iteration
/// began are committed; without a file, L1's — and keeps a cursor per page (``ScanCursors``).
public final class EmbeddedKeyOperations: KeyOperations {
    public let cache: EmbeddedExactCache
    /// The largest value APPEND and HSET may leave.
    public let maxValueBytes: Int
    let cursors: Locked<ScanCursors>
    static let maxAttempts = 8
    /// Keys a FLUSHDB deletes per step (one file read, one batch of deletes).
    static let flushPage = 1000

    public init(cache: EmbeddedExactCache, maxValueBytes: Int, scanCursors: Int = ScanCursors.defaultCapacity) {
        self.cache = cache
        self.maxValueBytes = maxValueBytes
        cursors = Locked(ScanCursors(capacity: scanCursors))
    }

    public var answersInOrder: Bool { false }

    var keyspace: Keyspace { cache.keyspace }
    var store: SQLiteStore? { cache.store }

    // MARK: Read-modify-write

    public func apply(_ operation: KeyOperation, to key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyOperationReply, StoreFailure>> {
        if let store, let refusal = store.writeRefusal { return .ready(.failure(refusal)) }
        return attempt(operation, ByteBuffer.owned(key), now: now, attemptsLeft: Self.maxAttempts, on: eventLoop)
    }

    enum Step {
        case decided(KeyOperationReply, SQLiteStore.Admission)
        case fetch(version: UInt64)
    }

    func attempt(_ operation: KeyOperation, _ key: ByteBuffer, now: Timestamp, attemptsLeft: Int,
                 on eventLoop: any EventLoop) -> Deferred<Result<KeyOperationReply, StoreFailure>> {
        let hash = keyspace.hasher.hash(key)
        let step = keyspace.withShard(hash: hash) { shard -> Step in
            switch shard.read(key, hash: hash, now: now.wall, counting: false) {
            case .hit(let value, let meta):
                return decide(operation, on: (value.bytes, meta), key, hash: hash, now: now.wall, in: &shard)
            case .miss:
                return decide(operation, on: nil, key, hash: hash, now: now.wall, in: &shard)
            case .inL2(let version):
                return .fetch(version: version)
            }
        }
        switch step {
        case .decided(let reply, let admission):
            return cache.acknowledge(.success(reply), admission, on: eventLoop) { .failure($0) }
        case .fetch(let version):
            guard let store, attemptsLeft > 0 else {
                return .ready(.failure(.unavailable("the key changed under \(Self.maxAttempts) attempts in a row")))
            }
            let keyspace = keyspace
            return .later(store.fetch(key, now: now.wall, on: eventLoop).flatMap { [self] found -> EventLoopFuture<Result<KeyOperationReply, StoreFailure>> in
                let step = keyspace.withShard(hash: hash) { shard -> Step? in
                    // Decided only on the value the fetch saw: the same version, and no newer
                    // copy in L1 (a write or a promotion since).
                    guard shard.directory?[hash]?.version == version, !shard.l1.containsLive(hash: hash, now: now.wall) else { return nil }
                    return decide(operation, on: found.map { (Array($0.0.readableBytesView)[...], $0.1) }, key, hash: hash, now: now.wall, in: &shard)
                }
                guard case .decided(let reply, let admission)? = step else {
                    return attempt(operation, key, now: now, attemptsLeft: attemptsLeft - 1, on: eventLoop).future(on: eventLoop)
                }
                return cache.acknowledge(.success(reply), admission, on: eventLoop) { .failure($0) }.future(on: eventLoop)
            }.recover { error in .failure(.unavailable("the data file could not be read: \(error)")) })
        }
    }

    /// Under the shard's lock: the operation's outcome, applied to L1, the directory and the
    /// store's queue.
    func decide(_ operation: KeyOperation, on current: (bytes: ArraySlice<UInt8>, meta: EntryMeta)?, _ key: ByteBuffer, hash: UInt64,
                now: Int64, in shard: inout CacheShard) -> Step {
        let outcome = operation.apply(to: current, now: now, maxValueBytes: maxValueBytes)
        switch outcome.change {
        case .none:
            return .decided(outcome.reply, .now)
        case .write(let bytes, let meta):
            let value = ByteBuffer(bytes: bytes)
            shard.write(entry: S3FIFOCache.entry(key: key, value: value), keyLength: key.readableBytes, hash: hash, meta: meta)
            return .decided(outcome.reply, store?.store(key, value: value, meta: meta) ?? .now)
        case .delete:
            _ = shard.delete(key, hash: hash, now: now)
            return .decided(outcome.reply, store?.delete(key) ?? .now)
        }
    }

    // MARK: Reads

    public func hashFields(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<HashRead, StoreFailure>> {
        // A lookup like GET's: counted as a hit or a miss (LangChain's cache reads hashes).
        cache.read(key, lease: 0, now: now, on: eventLoop).map { read in
            guard case .hit(let value, let meta, _) = read else { return .success(.absent) }
            guard meta.kind == .hash else { return .success(.wrongType) }
            return .success(HashFields.decode(value.bytes).map(HashRead.fields) ?? .absent)
        }
    }

    public func kind(_ key: ByteBuffer, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<EntryKind?, StoreFailure>> {
        let hash = keyspace.hasher.hash(key)
        enum Found { case kind(EntryKind?), fetch }
        let found = keyspace.withShard(hash: hash) { shard -> Found in
            if let meta = shard.l1.peek(key, hash: hash, now: now.wall) { return .kind(meta.kind) }
            return shard.expiry(key, hash: hash, now: now.wall) == nil ? .kind(nil) : .fetch
        }
        switch found {
        case .kind(let kind): return .ready(.success(kind))
        case .fetch:
            guard let store else { return .ready(.success(nil)) }
            return .later(store.fetch(ByteBuffer.owned(key), now: now.wall, on: eventLoop).map { .success($0?.1.kind) }
                .recover { .failure(.unavailable("the data file could not be read: \($0)")) })
        }
    }

    // MARK: SCAN, FLUSHDB

    public func scan(from cursor: UInt64, count: Int, kind: EntryKind?, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<KeyScan, StoreFailure>> {
        let after: [UInt8]?
        switch cursors.withLock({ $0.lookup(cursor) }) {
        case .unknown: return .ready(.success(.invalidCursor))
        case .start: after = nil
        case .after(let key): after = key
        }
        let count = max(1, min(count, 100_000))
        guard let store else {
            let (keys, more) = l1Keys(after: after, limit: count, kind: kind, now: now.wall)
            return .ready(.success(page(keys, more: more)))
        }
        // The first page waits for the writes queued before it, so the file holds every key
        // that exists when the iteration begins.
        let ready = after == nil ? store.committed(on: eventLoop) : eventLoop.makeSucceededVoidFuture()
        let keyspace = keyspace
        return .later(ready.flatMap { store.keys(after: after, limit: count, on: eventLoop) }.map { [self] rows -> Result<KeyScan, StoreFailure> in
            // The file may still hold keys deleted or expired since (their change not yet
            // committed): the directory, which knows, has the last word.
            let live = rows.filter { row in
                guard kind == nil || row.kind == kind else { return false }
                let hash = keyspace.hasher.hash(row.key)
                return keyspace.withShard(hash: hash) { $0.expiry(row.key, hash: hash, now: now.wall) } != nil
            }
            let last = rows.last.map { Array($0.key.readableBytesView) }
            return .success(page(live.map(\.key), more: rows.count == count ? last : nil))
        }.recover { .failure(.unavailable("the data file could not be read: \($0)")) })
    }

    /// A page and the cursor that resumes after `more` (0: done).
    func page(_ keys: [ByteBuffer], more: [UInt8]?) -> KeyScan {
        guard let more else { return .page(next: 0, keys: keys) }
        return .page(next: cursors.withLock { $0.cursor(after: more) }, keys: keys)
    }

    /// Without a file: L1's live keys after `after`, bytewise, at most `limit` (and the last one
    /// when there may be more).
    func l1Keys(after: [UInt8]?, limit: Int, kind: EntryKind?, now: Int64) -> ([ByteBuffer], more: [UInt8]?) {
        var keys: [[UInt8]] = []
        keyspace.forEachShard { shard in
            shard.l1.forEachLive(now: now) { key, meta in
                guard kind == nil || meta.kind == kind else { return }
                if let after, !after.lexicographicallyPrecedes(key) { return }
                keys.append(Array(key))
            }
        }
        keys.sort { $0.lexicographicallyPrecedes($1) }
        let taken = keys.prefix(limit)
        return (taken.map { ByteBuffer(bytes: $0) }, keys.count > limit ? taken.last : nil)
    }

    public func keys(matching pattern: GlobPattern, limit: Int, now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<[ByteBuffer]?, StoreFailure>> {
        guard let store else {
            var found: [ByteBuffer] = []
            var over = false
            keyspace.forEachShard { shard in
                guard !over else { return }
                shard.l1.forEachLive(now: now.wall) { key, _ in
                    guard !over, pattern.matches(Array(key)) else { return }
                    found.append(ByteBuffer(bytes: key))
                    over = found.count > limit
                }
            }
            return .ready(.success(over ? nil : found))
        }
        let collector = KeyCollector(pattern: pattern, limit: limit)
        return .later(store.committed(on: eventLoop).flatMap { [self] in
            collectKeys(store, after: nil, into: collector, now: now, on: eventLoop)
        }.map { .success($0) }.recover { .failure(.unavailable("the data file could not be read: \($0)")) })
    }

    /// KEYS over the file: pages in key order, each kept key live by the directory.
    func collectKeys(_ store: SQLiteStore, after: [UInt8]?, into collector: KeyCollector, now: Timestamp,
                     on eventLoop: any EventLoop) -> EventLoopFuture<[ByteBuffer]?> {
        store.keys(after: after, limit: Self.flushPage, on: eventLoop).flatMap { [self] rows in
            for row in rows {
                let hash = keyspace.hasher.hash(row.key)
                guard keyspace.withShard(hash: hash, { $0.expiry(row.key, hash: hash, now: now.wall) }) != nil else { continue }
                guard collector.add(row.key) else { return eventLoop.makeSucceededFuture(nil) }
            }
            guard rows.count == Self.flushPage, let last = rows.last else { return eventLoop.makeSucceededFuture(collector.found) }
            return self.collectKeys(store, after: Array(last.key.readableBytesView), into: collector, now: now, on: eventLoop)
        }
    }

    public func flush(now: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Int, StoreFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(refusal)) }
        guard let store else { return .ready(.success(deleteL1Keys(now: now, on: eventLoop))) }
        return .later(store.committed(on: eventLoop).flatMap { [self] in
            flushFile(store, after: nil, deleted: 0, now: now, on: eventLoop)
        }.map { [self] deleted in
            deleted.map { $0 + deleteL1Keys(now: now, on: eventLoop) }
        })
    }

    /// Deletes the file's keys a page at a time, through the cache (L1, directory and file
    /// together), until a page comes back short.
    func flushFile(_ store: SQLiteStore, after: [UInt8]?, deleted: Int, now: Timestamp, on eventLoop: any EventLoop) -> EventLoopFuture<Result<Int, StoreFailure>> {
        store.keys(after: after, limit: Self.flushPage, on: eventLoop).flatMap { [self] rows in
            guard let last = rows.last else { return eventLoop.makeSucceededFuture(.success(deleted)) }
            return cache.delete(rows.map(\.key), now: now, on: eventLoop).future(on: eventLoop).flatMap { result in
                switch result {
                case .failure(let failure): return eventLoop.makeSucceededFuture(.failure(failure))
                case .success(let n):
                    guard rows.count == Self.flushPage else { return eventLoop.makeSucceededFuture(.success(deleted + n)) }
                    return self.flushFile(store, after: Array(last.key.readableBytesView), deleted: deleted + n, now: now, on: eventLoop)
                }
            }
        }.recover { .failure(.unavailable("the data file could not be read: \($0)")) }
    }

    /// Deletes what L1 holds (everything, without a file; keys written during a flush, with one).
    func deleteL1Keys(now: Timestamp, on eventLoop: any EventLoop) -> Int {
        var keys: [ByteBuffer] = []
        keyspace.forEachShard { shard in
            shard.l1.forEachLive(now: now.wall) { key, _ in keys.append(ByteBuffer(bytes: key)) }
        }
        guard !keys.isEmpty else { return 0 }
        // Without a file this answers at once; with one the deletes are queued like DEL's.
        if case .ready(.success(let n)) = cache.delete(keys, now: now, on: eventLoop) { return n }
        return keys.count
    }
}
