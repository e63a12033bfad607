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
        /// In order: a later change to the same prompt must land after an earlier one.
        var semantic: [SemanticChange] = []
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
        CREATE TABLE IF NOT EXISTS sem_entries (
            ns TEXT NOT NULL,
            scope TEXT NOT NULL,
            prompt TEXT NOT NULL,
            response BLOB NOT NULL,
            embedder TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (ns, scope, prompt)
        ) WITHOUT ROWID;
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

    /// Queues a semantic change for the next batch.
    public func enqueue(_ change: SemanticChange) {
        let schedule = state.withLock { s -> Bool in
            guard !s.closed else { return false }
            s.semantic.append(change)
            if s.flushScheduled { return false }
            s.flushScheduled = true
            return true
        }
        if schedule {
            writerPool.submit { [self] _ in flushBatches() }
        }
    }

    /// Every live semantic entry, oldest first (start-up reload).
    public func forEachSemanticEntry(now: Int64, _ body: (SemanticChange) -> Void) throws {
        try writer.withLock { db in
            let stmt = try db.statement("SELECT ns, scope, prompt, response, embedder, vector, created_at, expires_at FROM sem_entries WHERE expires_at = 0 OR expires_at > ?1 ORDER BY created_at")
            stmt.bind(1, now)
            while try stmt.step() {
                var blob = stmt.blob(5)
                var vector: [Float] = []
                vector.reserveCapacity(blob.readableBytes / 4)
                while let bits = blob.readInteger(endianness: .little, as: UInt32.self) { vector.append(Float(bitPattern: bits)) }
                body(.set(namespace: String(buffer: stmt.blob(0)), scope: String(buffer: stmt.blob(1)), prompt: String(buffer: stmt.blob(2)),
                          response: stmt.blob(3), embedder: String(buffer: stmt.blob(4)), vector: vector,
                          createdAt: stmt.int64(6), expiresAt: stmt.int64(7)))
            }
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
            let (batch, semantic) = state.withLock { s -> ([ByteBuffer: Operation], [SemanticChange]) in
                if s.pending.isEmpty && s.semantic.isEmpty {
                    s.flushScheduled = false
                    return ([:], [])
                }
                s.inFlight = s.pending
                s.pending = [:]
                let semantic = s.semantic
                s.semantic = []
                return (s.inFlight, semantic)
            }
            if batch.isEmpty && semantic.isEmpty { return }
            let ok = commit(batch, semantic)
            state.withLock { s in
                s.inFlight = [:]
                s.counters.batches += 1
                let n = batch.count + semantic.count
                if ok { s.counters.writes += n } else { s.counters.writeErrors += n }
            }
        }
    }

    func commit(_ batch: [ByteBuffer: Operation], _ semantic: [SemanticChange] = []) -> Bool {
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
                for change in semantic { try apply(change, db) }
                try db.execute("COMMIT")
                return true
            } catch {
                logger.error("SQLite batch of \(batch.count) writes failed", metadata: ["error": "\(error)", "path": "\(path)"])
                try? db.execute("ROLLBACK")
                return false
            }
        }
    }

    func apply(_ change: SemanticChange, _ db: SQLiteConnection) throws {
        switch change {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt):
            let stmt = try db.statement("INSERT OR REPLACE INTO sem_entries(ns, scope, prompt, response, embedder, vector, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            var blob = ByteBuffer()
            for x in vector { blob.writeInteger(x.bitPattern, endianness: .little) }
            stmt.bind(1, ByteBuffer(string: ns))
            stmt.bind(2, ByteBuffer(string: scope))
            stmt.bind(3, ByteBuffer(string: prompt))
            stmt.bind(4, response)
            stmt.bind(5, ByteBuffer(string: embedder))
            stmt.bind(6, blob)
            stmt.bind(7, createdAt)
            stmt.bind(8, expiresAt)
            try stmt.run()
        case .delete(let ns, let scope, let prompt):
            let stmt = try db.statement("DELETE FROM sem_entries WHERE ns = ?1 AND scope = ?2 AND prompt = ?3")
            stmt.bind(1, ByteBuffer(string: ns))
            stmt.bind(2, ByteBuffer(string: scope))
            stmt.bind(3, ByteBuffer(string: prompt))
            try stmt.run()
        case .drop(let ns):
            let stmt = try db.statement("DELETE FROM sem_entries WHERE ns = ?1")
            stmt.bind(1, ByteBuffer(string: ns))
            try stmt.run()
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
                let removed = db.changes
                let sem = try db.statement("DELETE FROM sem_entries WHERE expires_at != 0 AND expires_at <= ?1")
                sem.bind(1, now)
                try sem.run()
                return removed + db.changes
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

extension SQLiteStore {
    /// Queues a write of `key` (owned buffers: the queue keeps them until the commit).
    public func store(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta) {
        enqueue(key: key, .set(value: value, meta: meta))
    }

    /// Queues a delete of `key`.
    public func delete(_ key: ByteBuffer) {
        enqueue(key: key, .delete)
    }

    /// Counters for STATS, as (name, value).
    public func statistics() -> [(String, Int)] {
        let c = counters
        return [("batches", c.batches), ("writes", c.writes), ("write_errors", c.writeErrors), ("reads", c.reads)]
    }
}
