import Logging
import NIOCore
import NIOPosix
import SluiceDomain
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The embedded L2: a SQLite file (WAL) holding every cached entry, so the cache survives
/// restarts with no Redis anywhere.
///
/// Writes never block the caller: they go into a pending map and one writer thread commits
/// everything pending in one transaction ("group commit"), then takes the next batch. Reads
/// run on a small pool of reader connections and see pending writes first, so a value evicted
/// from L1 before its write reached disk is still found.
///
/// Durability is like Redis's default `appendfsync everysec`: an acknowledged write reaches
/// the file within one batch (milliseconds); a graceful shutdown flushes everything; a crash
/// of the process may lose the batch in flight.
public final class SQLiteStore: Sendable {
    public enum Operation: Sendable {
        case set(value: ByteBuffer, meta: EntryMeta)
        case delete
    }

    public struct Counters: Sendable, Hashable {
        public var batches = 0
        public var writes = 0
        public var writeErrors = 0
        public var reads = 0
    }

    struct State: Sendable {
        var pending: [ByteBuffer: Operation] = [:]
        /// The batch the writer is committing now; still visible to readers until committed.
        var inFlight: [ByteBuffer: Operation] = [:]
        var flushScheduled = false
        var counters = Counters()
        var closed = false
    }

    public let path: String
    /// Writes arriving within this window after a commit go into the next one together:
    /// fewer, larger transactions (the writer thread otherwise spends its time on locking
    /// and WAL appends for batches of one or two rows).
    public let groupCommitWindow: Duration
    let state = Mutex(State())
    let readers: Mutex<[SQLiteConnection]>
    let writer: Mutex<SQLiteConnection>
    let writerPool: NIOThreadPool
    let readerPool: NIOThreadPool
    let logger: Logger

    static let schema = """
        PRAGMA journal_mode=WAL;
        PRAGMA synchronous=NORMAL;
        CREATE TABLE IF NOT EXISTS entries (
            key BLOB PRIMARY KEY,
            value BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entries_expiry ON entries(expires_at) WHERE expires_at != 0;
        """

    /// Opens (creating if needed) `path`. `readerThreads` reads may run at once.
    public init(path: String, readerThreads: Int = 2, groupCommitWindow: Duration = .milliseconds(5),
                logger: Logger = Logger(label: "sluice.sqlite")) throws {
        self.path = path
        self.groupCommitWindow = groupCommitWindow
        self.logger = logger
        let writerConnection = try SQLiteConnection(path: path)
        try writerConnection.execute(Self.schema)
        writer = Mutex(writerConnection)
        var readerConnections: [SQLiteConnection] = []
        for _ in 0..<max(readerThreads, 1) {
            let c = try SQLiteConnection(path: path)
            try c.execute("PRAGMA query_only=1;")
            readerConnections.append(c)
        }
        readers = Mutex(readerConnections)
        writerPool = NIOThreadPool(numberOfThreads: 1)
        readerPool = NIOThreadPool(numberOfThreads: max(readerThreads, 1))
        writerPool.start()
        readerPool.start()
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Every live key with its expiry, for the in-memory directory at start-up.
    public func forEachLiveKey(now: Int64, _ body: (ByteBuffer, Int64) -> Void) throws {
        try writer.withLock { db in
            let stmt = try db.statement("SELECT key, expires_at FROM entries WHERE expires_at = 0 OR expires_at > ?1")
            stmt.bind(1, now)
            while try stmt.step() {
                body(stmt.blob(0), stmt.int64(1))
            }
        }
    }

    // MARK: Writes

    /// Queues a write; it is committed with the next batch. Never blocks on disk.
    public func enqueue(key: ByteBuffer, _ operation: Operation) {
        let schedule = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.pending[key] = operation
            if s.flushScheduled { return false }
            s.flushScheduled = true
            return true
        }
        if schedule {
            writerPool.submit { [self] _ in flushBatches() }
        }
    }

    /// Commits batches until nothing is pending. Runs on the writer thread.
    func flushBatches(waiting: Bool = true) {
        while true {
            if waiting && groupCommitWindow > .zero {
                // On the writer's own thread, never an event loop.
                let (seconds, attoseconds) = groupCommitWindow.components
                usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
            }
            let batch = state.withLock { s -> [ByteBuffer: Operation] in
                if s.pending.isEmpty {
                    s.flushScheduled = false
                    return [:]
                }
                s.inFlight = s.pending
                s.pending = [:]
                return s.inFlight
            }
            if batch.isEmpty { return }
            let ok = commit(batch)
            state.withLock { s in
                s.inFlight = [:]
                s.counters.batches += 1
                if ok { s.counters.writes += batch.count } else { s.counters.writeErrors += batch.count }
            }
        }
    }

    func commit(_ batch: [ByteBuffer: Operation]) -> Bool {
        writer.withLock { db -> Bool in
            do {
                try db.execute("BEGIN")
                for (key, op) in batch {
                    switch op {
                    case .set(let value, let meta):
                        let stmt = try db.statement(
                            "INSERT INTO entries(key, value, created_at, expires_at, tokens, cost) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO UPDATE SET value=excluded.value, created_at=excluded.created_at, expires_at=excluded.expires_at, tokens=excluded.tokens, cost=excluded.cost")
                        stmt.bind(1, key)
                        stmt.bind(2, value)
                        stmt.bind(3, meta.createdAt)
                        stmt.bind(4, meta.expiresAt)
                        stmt.bind(5, meta.tokens)
                        stmt.bind(6, meta.cost)
                        try stmt.run()
                    case .delete:
                        let stmt = try db.statement("DELETE FROM entries WHERE key = ?1")
                        stmt.bind(1, key)
                        try stmt.run()
                    }
                }
                try db.execute("COMMIT")
                return true
            } catch {
                logger.error("SQLite batch of \(batch.count) writes failed", metadata: ["error": "\(error)", "path": "\(path)"])
                try? db.execute("ROLLBACK")
                return false
            }
        }
    }

    /// Waits until everything queued so far is on disk (shutdown, tests).
    public func flush() async {
        // Run on the writer thread so it orders after any batch in progress.
        try? await writerPool.runIfActive { [self] in flushBatches(waiting: false) }
    }

    // MARK: Reads

    /// Reads a key's value and metadata (nil: absent or expired), off the caller's thread.
    public func fetch(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<(ByteBuffer, EntryMeta)?> {
        // Writes not yet on disk answer first.
        let queued = state.withLock { s -> Operation? in
            s.counters.reads += 1
            return s.pending[key] ?? s.inFlight[key]
        }
        if let queued {
            switch queued {
            case .set(let value, let meta):
                return eventLoop.makeSucceededFuture(meta.isExpired(at: now) ? nil : (value, meta))
            case .delete:
                return eventLoop.makeSucceededFuture(nil)
            }
        }
        return readerPool.runIfActive(eventLoop: eventLoop) { [self] in
            try readFromDisk(key, now: now)
        }
    }

    func readFromDisk(_ key: ByteBuffer, now: Int64) throws -> (ByteBuffer, EntryMeta)? {
        let connection = readers.withLock { $0.popLast() }
        guard let db = connection else {
            // More concurrent reads than connections: open one more (rare; pool size = threads).
            let extra = try SQLiteConnection(path: path)
            return try read(key, now: now, db: extra)
        }
        defer { readers.withLock { $0.append(db) } }
        return try read(key, now: now, db: db)
    }

    func read(_ key: ByteBuffer, now: Int64, db: SQLiteConnection) throws -> (ByteBuffer, EntryMeta)? {
        let stmt = try db.statement("SELECT value, created_at, expires_at, tokens, cost FROM entries WHERE key = ?1")
        stmt.bind(1, key)
        guard try stmt.step() else { return nil }
        let meta = EntryMeta(createdAt: stmt.int64(1), expiresAt: stmt.int64(2), tokens: stmt.int64(3), cost: stmt.double(4))
        if meta.isExpired(at: now) { return nil }
        return (stmt.blob(0), meta)
    }

    // MARK: Housekeeping

    /// Deletes expired rows, on the writer thread. Returns how many.
    public func deleteExpired(now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        writerPool.runIfActive(eventLoop: eventLoop) { [self] in
            try writer.withLock { db -> Int in
                let stmt = try db.statement("DELETE FROM entries WHERE expires_at != 0 AND expires_at <= ?1")
                stmt.bind(1, now)
                try stmt.run()
                return db.changes
            }
        }
    }

    /// Flushes, then stops the threads. Later writes are dropped.
    public func close() async {
        await flush()
        state.withLock { $0.closed = true }
        try? await writerPool.shutdownGracefully()
        try? await readerPool.shutdownGracefully()
    }
}

extension SQLiteStore: L2Store {
    public var kind: String { "sqlite" }

    public func statistics() -> [(String, Int)] {
        let c = counters
        return [("batches", c.batches), ("writes", c.writes), ("write_errors", c.writeErrors), ("reads", c.reads)]
    }

    public func store(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta) {
        enqueue(key: key, .set(value: value, meta: meta))
    }

    public func delete(_ key: ByteBuffer) {
        enqueue(key: key, .delete)
    }
}
