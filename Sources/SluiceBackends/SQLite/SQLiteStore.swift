import DequeModule
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceDomain
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The embedded L2: a SQLite file (WAL) holding every cached entry and the semantic entries,
/// so the cache survives restarts with no Redis anywhere.
///
/// Writes never block the caller: they go into a pending map and one writer thread commits
/// everything pending in one transaction ("group commit"), then takes the next batch. Reads
/// run on a small pool of reader connections and see pending writes first, so a value evicted
/// from L1 before its write reached disk is still found.
///
/// Bounds, and what happens at each:
/// - **Pending writes** (`maxPendingBytes`): past it, ``room(on:)`` is a future that completes
///   when the writer has caught up — callers hold their acknowledgement until then, so a fast
///   writer is slowed to the disk's pace instead of growing memory. Past twice that
///   (``hardMaxPendingBytes``), writes are refused (`TRYAGAIN`): clients that do not wait for
///   their acknowledgements cannot grow it further.
/// - **The file** (`maxBytes`, counted by triggers in the file itself): past it, the oldest
///   rows (entries and semantic entries, by creation time) are deleted after each commit, and
///   ``onEvicted`` hears which keys went.
/// - **Reads waiting for a thread** (`maxQueuedReads`): past it, a read fails at once (a miss).
/// - **Bytes read and not yet taken by their event loop** (``maxReadBytesWaiting``): past it, a
///   read fails at once too. The readers can outrun the event loops that take their rows (a
///   burst of requests for a 3 MB value: the loops copy each into a reply), and what they read
///   waits in memory meanwhile — gigabytes, bounded by nothing else.
///
/// Durability (``FsyncPolicy``): `everysec` (default) acknowledges at once, commits within the
/// group-commit window and makes the WAL durable at least once a second; `always`
/// acknowledges after the commit is synced; `no` leaves syncing to the OS. A commit that fails
/// (disk full, read-only) is retried with backoff; meanwhile ``failure`` says why and callers
/// refuse new writes.
public final class SQLiteStore: Sendable {
    public enum Operation: Sendable {
        case set(value: ByteBuffer, meta: EntryMeta)
        case delete

        var bytes: Int {
            switch self {
            case .set(let value, _): return value.readableBytes + SQLiteStore.rowOverhead
            case .delete: return SQLiteStore.rowOverhead
            }
        }
    }

    public enum FsyncPolicy: String, Sendable, CaseIterable {
        /// Acknowledge after the batch is committed and synced to disk.
        case always
        /// Acknowledge at once; commit within the group-commit window, sync the WAL every second.
        case everysec
        /// Acknowledge at once; never sync (the OS writes back when it likes).
        case no
    }

    public struct Counters: Sendable, Hashable {
        public var batches = 0
        public var writes = 0
        public var writeErrors = 0
        public var reads = 0
        public var evictedRows = 0
        public var readsRefused = 0
        /// Writes refused because the queue was past ``SQLiteStore/hardMaxPendingBytes``.
        public var refusedFull = 0
        /// Time spent committing batches, µs (with `batches`: the mean commit latency).
        public var commitMicroseconds = 0
    }

    struct State: Sendable {
        var pending: [ByteBuffer: Operation] = [:]
        /// The batch the writer is committing now; still visible to readers until committed.
        var inFlight: [ByteBuffer: Operation] = [:]
        /// In order: a later change to the same prompt must land after an earlier one.
        var semantic: [SemanticChange] = []
        var pendingBytes = 0
        var inFlightBytes = 0
        /// What the queue holds in memory, to compare with `maxPendingBytes`.
        var queuedBytes: Int { pendingBytes + inFlightBytes }
        /// Changes enqueued so far, and the number of them known committed.
        var enqueued: UInt64 = 0
        var committed: UInt64 = 0
        var durableWaiters = Deque<(UInt64, EventLoopPromise<Void>)>()
        var roomWaiters: [EventLoopPromise<Void>] = []
        /// Why the last commit failed (nil: it did not).
        var failure: String?
        var bytesInFile = 0
        var flushScheduled = false
        var counters = Counters()
        var closed = false
        /// `close()` has begun: a failing disk is retried only until `closeDeadline`.
        var closing = false
        /// A commit since the last WAL checkpoint (`everysec`).
        var unsynced = false
        /// Rows the writer commits per second, measured (a moving average over batches).
        var commitRate: Double = 20_000
        /// Writes queued, not yet committed (entries coalesce by key; semantic changes do not).
        var queuedWrites: Int { pending.count + inFlight.count + semantic.count }
        /// Past this many queued writes that only memory holds, acknowledgements wait: what the
        /// writer commits in about half a second, so that a crash loses no more than `everysec`
        /// promises. With the journal, entries are not counted (the journal holds them).
        var maxQueuedWrites: Int { max(1_000, Int(commitRate / 2)) }
        /// Records not yet written to the journal, and whether the journal thread is on its way.
        var journalBuffer = ByteBuffer()
        var journalScheduled = false
        /// Why the last journal write failed (nil: it did not).
        var journalFailure: String?
        /// Callers of `flush()` waiting: the writer stops gathering and commits.
        var flushWaiters = 0
        /// Journal bytes written since the writer last took a batch (past a bound it stops
        /// gathering, so that the journal files on disk stay bounded).
        var journaledSinceBatch = 0
        /// `journaling`: entry writes are in the journal, so only semantic changes count against
        /// the half-second bound; all queued writes together are still held to about two seconds
        /// of commits, which a shutdown commits before it exits (without that bound, 256 MiB of
        /// them made SIGTERM take longer than 15 s in a debug build).
        func overBound(_ maxBytes: Int, journaling: Bool) -> Bool {
            let unjournaled = journaling ? semantic.count : queuedWrites
            return queuedBytes + journalBuffer.readableBytes > maxBytes || unjournaled > maxQueuedWrites
                || (journaling && queuedWrites > 4 * maxQueuedWrites)
                || journalBuffer.readableBytes > SQLiteStore.maxUnjournaledBytes
        }
    }

    /// Acknowledged writes not yet written to the journal (what `kill -9` can lose): past this,
    /// acknowledgements wait for the journal thread, which may be in an `fdatasync`.
    static let maxUnjournaledBytes = 4 << 20
    /// Journal written since the last batch was taken, past which the writer commits at once.
    static let maxJournalBacklog = 128 << 20

    /// How long `close()` keeps retrying a failing disk before it gives up on what is queued.
    public static let closeDeadline: Duration = .seconds(10)

    /// What a row costs beyond its value, roughly (key, columns, b-tree and index entries).
    static let rowOverhead = 96

    public let path: String
    public let fsync: FsyncPolicy
    /// Writes arriving within this window after a commit go into the next one together (not
    /// with `fsync always`, where callers are waiting).
    public let groupCommitWindow: Duration
    public let maxPendingBytes: Int
    /// 0: the file is not bounded.
    public let maxBytes: Int
    public let maxQueuedReads: Int
    /// Bytes of rows read and not yet taken by their event loop, past which reads are refused.
    public let maxReadBytesWaiting: Int
    /// Taken by every event loop that writes (under a cache shard's lock) and by the writer thread.
    let state = Locked(State())
    let readers: Locked<[SQLiteConnection]>
    let writer: Locked<SQLiteConnection>
    let writerPool: NIOThreadPool
    let readerPool: NIOThreadPool
    let queuedReads = Atomic<Int>(0)
    let readBytesWaiting = Atomic<Int>(0)
    let evictionHandler = Locked<(@Sendable ([ByteBuffer]) -> Void)?>(nil)
    let semanticEvictionHandler = Locked<(@Sendable ([SemanticRow]) -> Void)?>(nil)

    /// A semantic entry's identity in the file.
    public struct SemanticRow: Sendable, Hashable {
        public var namespace: String
        public var scope: String
        public var prompt: String
        /// When the deleted row was written: a newer write of the prompt (queued, not yet in the
        /// file) is not what was evicted.
        public var createdAt: Int64 = 0
    }
    /// The journal of acknowledged entry writes (nil with `fsync always`, whose writers wait for
    /// the commit itself). See ``WriteJournal``.
    let journal: WriteJournal?
    let journalPool: NIOThreadPool?
    /// With the journal, the writer lets entry writes gather this long before a commit (unless
    /// much is pending or semantic changes wait), so that repeated keys coalesce.
    let applyWindow: Duration
    /// Monotonic seconds of the last WAL checkpoint (`everysec`).
    let lastSync = Atomic<Int64>(0)
    let logger: Logger

    static let schema = """
        PRAGMA journal_mode=WAL;
        PRAGMA journal_size_limit=67108864;
        CREATE TABLE IF NOT EXISTS entries (
            key BLOB PRIMARY KEY,
            value BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            tag TEXT NOT NULL DEFAULT '',
            kind INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entries_expiry ON entries(expires_at) WHERE expires_at != 0;
        CREATE INDEX IF NOT EXISTS entries_age ON entries(created_at);
        CREATE TABLE IF NOT EXISTS sem_entries (
            ns TEXT NOT NULL,
            scope TEXT NOT NULL,
            prompt TEXT NOT NULL,
            response BLOB NOT NULL,
            embedder TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            tag TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (ns, scope, prompt)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS sem_entries_age ON sem_entries(created_at);
        CREATE TABLE IF NOT EXISTS sem_verdicts (
            ns TEXT NOT NULL,
            scope TEXT NOT NULL,
            prompt TEXT NOT NULL,
            verdicts TEXT NOT NULL,
            PRIMARY KEY (ns, scope, prompt)
        ) WITHOUT ROWID;
        CREATE TRIGGER IF NOT EXISTS sem_verdicts_gone AFTER DELETE ON sem_entries BEGIN
            DELETE FROM sem_verdicts WHERE ns = OLD.ns AND scope = OLD.scope AND prompt = OLD.prompt; END;
        CREATE TRIGGER IF NOT EXISTS sem_verdicts_reset AFTER UPDATE OF response ON sem_entries BEGIN
            DELETE FROM sem_verdicts WHERE ns = OLD.ns AND scope = OLD.scope AND prompt = OLD.prompt; END;
        CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS journal_applied (id INTEGER PRIMARY KEY CHECK (id = 1), run INTEGER NOT NULL, change INTEGER NOT NULL);
        INSERT OR IGNORE INTO usage(id, bytes) SELECT 1,
            (SELECT coalesce(sum(length(key) + length(value) + 96), 0) FROM entries) +
            (SELECT coalesce(sum(length(ns) + length(scope) + length(prompt) + length(response) + length(vector) + 96), 0) FROM sem_entries);
        CREATE TRIGGER IF NOT EXISTS entries_in AFTER INSERT ON entries BEGIN
            UPDATE usage SET bytes = bytes + length(NEW.key) + length(NEW.value) + 96 WHERE id = 1; END;
        CREATE TRIGGER IF NOT EXISTS entries_out AFTER DELETE ON entries BEGIN
            UPDATE usage SET bytes = bytes - length(OLD.key) - length(OLD.value) - 96 WHERE id = 1; END;
        CREATE TRIGGER IF NOT EXISTS entries_change AFTER UPDATE ON entries BEGIN
            UPDATE usage SET bytes = bytes + length(NEW.value) - length(OLD.value) WHERE id = 1; END;
        CREATE TRIGGER IF NOT EXISTS sem_in AFTER INSERT ON sem_entries BEGIN
            UPDATE usage SET bytes = bytes + length(NEW.ns) + length(NEW.scope) + length(NEW.prompt) + length(NEW.response)
                + length(NEW.vector) + 96 WHERE id = 1; END;
        CREATE TRIGGER IF NOT EXISTS sem_out AFTER DELETE ON sem_entries BEGIN
            UPDATE usage SET bytes = bytes - length(OLD.ns) - length(OLD.scope) - length(OLD.prompt) - length(OLD.response)
                - length(OLD.vector) - 96 WHERE id = 1; END;
        CREATE TRIGGER IF NOT EXISTS sem_change AFTER UPDATE ON sem_entries BEGIN
            UPDATE usage SET bytes = bytes + length(NEW.response) + length(NEW.vector) - length(OLD.response)
                - length(OLD.vector) WHERE id = 1; END;
        """

    /// The count recomputed from the rows, at every open: a file written by a version whose
    /// count drifted (semantic replaces once bypassed the triggers) is right again.
    static let recount = """
        UPDATE usage SET bytes =
            (SELECT coalesce(sum(length(key) + length(value) + 96), 0) FROM entries) +
            (SELECT coalesce(sum(length(ns) + length(scope) + length(prompt) + length(response) + length(vector) + 96), 0) FROM sem_entries)
            WHERE id = 1;
        """

    /// Opens (creating if needed) `path`. `readerThreads` reads may run at once.
    public init(path: String, fsync: FsyncPolicy = .everysec, maxBytes: Int = 0, maxPendingBytes: Int = 64 << 20,
                readerThreads: Int = 2, maxQueuedReads: Int = 10_000, maxReadBytesWaiting: Int = 256 << 20,
                groupCommitWindow: Duration = .milliseconds(5),
                applyWindow: Duration = .milliseconds(250), logger: Logger = Logger(label: "sluice.sqlite")) throws {
        self.path = path
        self.fsync = fsync
        self.maxBytes = maxBytes
        self.maxPendingBytes = maxPendingBytes
        self.maxQueuedReads = maxQueuedReads
        self.maxReadBytesWaiting = maxReadBytesWaiting
        self.groupCommitWindow = fsync == .always ? .zero : groupCommitWindow
        self.logger = logger
        let writerConnection = try SQLiteConnection(path: path)
        try writerConnection.execute(Self.schema)
        try Self.addMissingColumns(writerConnection)
        try writerConnection.execute(Self.recount)
        switch fsync {
        case .always: try writerConnection.execute("PRAGMA synchronous=FULL;")
        case .everysec: try writerConnection.execute("PRAGMA synchronous=NORMAL;")
        case .no: try writerConnection.execute("PRAGMA synchronous=OFF;")
        }
        // The writer's page cache holds the b-tree pages a batch of random keys touches (the
        // default 2 MiB made every commit re-read pages through the kernel: half the writer's
        // time in pread, `perf`). The WAL keeps SQLite's automatic checkpoint at 4 MiB: a larger
        // one (64 MiB) left shutdown a checkpoint of tens of MiB to copy and sync.
        try writerConnection.execute("PRAGMA cache_size=-65536;")
        let bytes = try Self.bytesInFile(writerConnection)
        writer = Locked(writerConnection)
        var readerConnections: [SQLiteConnection] = []
        for _ in 0..<max(readerThreads, 1) {
            let c = try SQLiteConnection(path: path)
            try c.execute("PRAGMA query_only=1;")
            readerConnections.append(c)
        }
        readers = Locked(readerConnections)
        writerPool = NIOThreadPool(numberOfThreads: 1)
        readerPool = NIOThreadPool(numberOfThreads: max(readerThreads, 1))
        writerPool.start()
        readerPool.start()
        self.applyWindow = applyWindow
        // Files left by a crash are read before a new one is begun (which is numbered after them).
        let leftover = WriteJournal.files(prefix: path + ".wlog.")
        if fsync == .always {
            journal = nil
            journalPool = nil
        } else {
            journal = try WriteJournal(databasePath: path)
            let pool = NIOThreadPool(numberOfThreads: 1)
            pool.start()
            journalPool = pool
        }
        state.withLock { $0.bytesInFile = bytes }
        if !leftover.isEmpty { try replayJournal(leftover.map(\.path)) }
    }

    /// Brings the file up to date with the journal files a crash left: their changes in order,
    /// from the first one the file does not have (``journalApplied``), then deletes them. A
    /// file damaged before its end (not a torn tail) is kept as `.corrupt`, with a warning.
    func replayJournal(_ files: [String]) throws {
        let (appliedRun, appliedChange) = try journalApplied()
        var batch: [ByteBuffer: Operation] = [:]
        var records = 0, skipped = 0
        var last: (run: UInt64, change: UInt64)?
        func commitBatch() throws {
            guard !batch.isEmpty else { return }
            if case .failure(let error) = commit(batch, applied: last) { throw error }
            batch = [:]
        }
        for path in files {
            var contents = try WriteJournal.readWholeFile(path)
            guard let run = WriteJournal.run(of: &contents) else {
                if contents.readableBytes > 0 {
                    logger.warning("not a Sluice journal file (no header); kept aside", metadata: ["path": "\(path)"])
                    rename(path, path + ".corrupt")
                } else {
                    unlink(path)
                }
                continue
            }
            if let previous = last, previous.run != run { try commitBatch() }  // one run per commit
            var inFile = 0
            var outcome = WriteJournal.next(&contents)
            while case .record(let record) = outcome {
                defer { outcome = WriteJournal.next(&contents) }
                inFile += 1
                if run == appliedRun && record.change <= appliedChange {
                    skipped += 1
                    continue
                }
                batch[record.key] = record.operation
                last = (run, record.change)
                records += 1
                if batch.count >= 50_000 { try commitBatch() }
            }
            if case .damaged = outcome {
                // Not a torn tail: a whole record does not check out.
                logger.warning("journal file damaged after \(inFile) records; the rest is skipped and the file kept aside",
                               metadata: ["path": "\(path)", "bytes_skipped": "\(contents.readableBytes)"])
                try commitBatch()
                rename(path, path + ".corrupt")
            }
        }
        try commitBatch()
        let bytes = try writer.withLock { db throws(SQLiteError) in try Self.bytesInFile(db) }
        state.withLock { $0.bytesInFile = bytes }
        // The replayed changes must be on disk before the files that hold them go.
        guard checkpointSynced(mode: "TRUNCATE") else {
            logger.warning("replayed the write journal but could not sync the file; the journal files stay")
            return
        }
        for path in files { unlink(path) }
        logger.info("replayed the write journal into the SQLite file",
                    metadata: ["records": "\(records)", "already_in_file": "\(skipped)", "files": "\(files.count)"])
        if maxBytes > 0 && bytes > maxBytes { evict(over: bytes) }
    }

    /// The run and last change the file has from the journal (0, 0: none).
    func journalApplied() throws -> (UInt64, UInt64) {
        var applied: (UInt64, UInt64) = (0, 0)
        try writer.withLock { db in
            let stmt = try db.statement("SELECT run, change FROM journal_applied WHERE id = 1")
            defer { stmt.finish() }
            if try stmt.step() { applied = (UInt64(bitPattern: stmt.int64(0)), UInt64(bitPattern: stmt.int64(1))) }
        }
        return applied
    }

    /// Files made before TAG (and SEM.SET's TOKENS and COST) existed get those columns.
    static func addMissingColumns(_ db: SQLiteConnection) throws(SQLiteError) {
        let wanted: [(table: String, column: String, definition: String)] = [
            ("entries", "tag", "TEXT NOT NULL DEFAULT ''"),
            ("entries", "kind", "INTEGER NOT NULL DEFAULT 0"),
            ("sem_entries", "tokens", "INTEGER NOT NULL DEFAULT 0"),
            ("sem_entries", "cost", "REAL NOT NULL DEFAULT 0"),
            ("sem_entries", "tag", "TEXT NOT NULL DEFAULT ''"),
        ]
        for (table, column, definition) in wanted {
            let stmt = try db.statement("SELECT count(*) FROM pragma_table_info('\(table)') WHERE name = '\(column)'")
            defer { stmt.finish() }
            guard try stmt.step(), stmt.int64(0) == 0 else { continue }
            try db.execute("ALTER TABLE \(table) ADD COLUMN \(column) \(definition)")
        }
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Bytes the file holds by the store's count (values, keys, a per-row overhead).
    public var bytesInFile: Int { state.withLock { $0.bytesInFile } }

    /// Why the store cannot write now (a commit failed and is being retried), or nil.
    public var failure: String? { state.withLock { $0.failure ?? $0.journalFailure } }

    /// Called (on the writer thread) with the keys of entries deleted to keep the file under
    /// its bound. Set once, before writes begin.
    public func onEvicted(_ handler: @escaping @Sendable ([ByteBuffer]) -> Void) {
        evictionHandler.withLock { $0 = handler }
    }

    /// Called (on the writer thread) with the semantic entries deleted to keep the file under
    /// its bound, so that memory forgets them too. Set once, before writes begin.
    public func onSemanticEvicted(_ handler: @escaping @Sendable ([SemanticRow]) -> Void) {
        semanticEvictionHandler.withLock { $0 = handler }
    }

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

    /// Every live semantic entry, oldest first (start-up reload).
    public func forEachSemanticEntry(now: Int64, _ body: (SemanticChange) -> Void) throws {
        try writer.withLock { db in
            let stmt = try db.statement("""
                SELECT e.ns, e.scope, e.prompt, e.response, e.embedder, e.vector, e.created_at, e.expires_at, v.verdicts,
                       e.tokens, e.cost, e.tag
                FROM sem_entries e LEFT JOIN sem_verdicts v ON v.ns = e.ns AND v.scope = e.scope AND v.prompt = e.prompt
                WHERE e.expires_at = 0 OR e.expires_at > ?1 ORDER BY e.created_at
                """)
            stmt.bind(1, now)
            while try stmt.step() {
                var blob = stmt.blob(5)
                var vector: [Float] = []
                vector.reserveCapacity(blob.readableBytes / 4)
                while let bits = blob.readInteger(endianness: .little, as: UInt32.self) { vector.append(Float(bitPattern: bits)) }
                let ns = String(buffer: stmt.blob(0)), scope = String(buffer: stmt.blob(1)), prompt = String(buffer: stmt.blob(2))
                body(.set(namespace: ns, scope: scope, prompt: prompt, response: stmt.blob(3), embedder: String(buffer: stmt.blob(4)),
                          vector: vector, createdAt: stmt.int64(6), expiresAt: stmt.int64(7),
                          worth: AnswerWorth(tokens: stmt.int64(9), cost: stmt.double(10), tag: SavingsTags.shared.id(for: String(buffer: stmt.blob(11))))))
                if let verdicts = Verdicts(encoded: String(buffer: stmt.blob(8))) {
                    body(.verdicts(namespace: ns, scope: scope, prompt: prompt, createdAt: stmt.int64(6), verdicts))
                }
            }
        }
    }

    // MARK: Writes

    /// What the caller should wait for before acknowledging a write it queued.
    public enum Admission: Sendable {
        /// Acknowledge now.
        case now
        /// `fsync always`: acknowledge when change number `ticket` is on disk (``durable(_:on:)``).
        case whenDurable(UInt64)
        /// Too much is pending: acknowledge when there is room again (``room(on:)``).
        case whenRoom
    }

    /// Queues a write; it is committed with the next batch. Never blocks on disk.
    @discardableResult
    public func enqueue(key: ByteBuffer, _ operation: Operation) -> Admission {
        // The journal record is built before the queue's lock (which every event loop's writes
        // take): under it, only its change number is set and its bytes copied.
        var record: ByteBuffer?
        if journal != nil {
            // One allocation of the record's size (header, metadata, a tag, key, value).
            var valueBytes = 0
            if case .set(let value, _) = operation { valueBytes = value.readableBytes }
            var r = ByteBuffer()
            r.reserveCapacity(64 + 256 + key.readableBytes + valueBytes)
            WriteJournal.append(change: 0, key: key, operation, to: &r)
            record = r
        }
        return enqueue { s in
            s.pendingBytes += operation.bytes - (s.pending.updateValue(operation, forKey: key)?.bytes ?? 0)
            if var record {
                // The change number this write gets (`enqueue` counts it after this closure).
                WriteJournal.setChange(s.enqueued + 1, in: &record)
                s.journalBuffer.writeImmutableBuffer(record)
            }
        }
    }

    /// Queues a semantic change for the next batch.
    @discardableResult
    public func enqueue(_ change: SemanticChange) -> Admission {
        enqueue { s in
            s.semantic.append(change)
            s.pendingBytes += change.approximateBytes
        }
    }

    func enqueue(_ add: (inout State) -> Void) -> Admission {
        let (schedule, scheduleJournal, admission) = state.withLock { s -> (Bool, Bool, Admission) in
            guard !s.closed else { return (false, false, .now) }
            add(&s)
            s.enqueued += 1
            let admission: Admission = fsync == .always ? .whenDurable(s.enqueued) : overBound(&s) ? .whenRoom : .now
            var scheduleJournal = false
            if s.journalBuffer.readableBytes > 0 && !s.journalScheduled {
                s.journalScheduled = true
                scheduleJournal = true
            }
            if s.flushScheduled { return (false, scheduleJournal, admission) }
            s.flushScheduled = true
            return (true, scheduleJournal, admission)
        }
        if scheduleJournal, let journalPool {
            journalPool.submit { [self] poolState in
                guard case .active = poolState else { return }
                writeJournal()
            }
        }
        if schedule {
            writerPool.submit { [self] poolState in
                    // A pool already stopped runs its queue as cancelled: close() flushed it.
                    guard case .active = poolState else { return }
                    flushBatches()
                }
        }
        return admission
    }

    /// Completes when change `ticket` is committed (and synced, with `fsync always`); fails with
    /// the disk's error when its commit failed.
    public func durable(_ ticket: UInt64, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let failure = state.withLock { s -> String?? in
            if s.committed >= ticket { return .some(nil) }
            if s.closed { return .some("store closed") }
            if let f = s.failure { return .some(f) }
            s.durableWaiters.append((ticket, promise))
            return .none
        }
        switch failure {
        case .some(nil): promise.succeed(())
        case .some(let f?): promise.fail(SQLiteError(code: 0, message: f))
        case .none: break
        }
        return promise.futureResult
    }

    /// Completes when the pending writes are back under their bound.
    public func room(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let now = state.withLock { s -> Bool in
            if !overBound(&s) || s.closed { return true }
            s.roomWaiters.append(promise)
            return false
        }
        if now { promise.succeed(()) }
        return promise.futureResult
    }

    /// Whether `key` has a write queued or being committed (eviction leaves such keys alone).
    public func isPending(_ key: ByteBuffer) -> Bool {
        state.withLock { $0.pending[key] != nil || $0.inFlight[key] != nil }
    }

    /// Commits batches until nothing is pending, or `maxBatches` of them: then it queues itself
    /// again behind whatever else waits for the writer thread (expiry, checkpoints), which a
    /// steady stream of writes would otherwise starve. Runs on the writer thread.
    func flushBatches(waiting: Bool = true, maxBatches: Int = 16) {
        var backoff: UInt32 = 50_000
        var batches = 0
        var giveUpAt: ContinuousClock.Instant?
        while true {
            batches += 1
            if waiting && batches > maxBatches {
                // flushScheduled stays true: this resubmission is the scheduled flush.
                writerPool.submit { [self] poolState in
                    // A pool already stopped runs its queue as cancelled: close() flushed it.
                    guard case .active = poolState else { return }
                    flushBatches()
                }
                return
            }
            if waiting && groupCommitWindow > .zero {
                // On the writer's own thread, never an event loop.
                let (seconds, attoseconds) = groupCommitWindow.components
                usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
                if journal != nil { gatherForApplyWindow() }
            }
            let (batch, semantic, ticket) = state.withLock { s -> ([ByteBuffer: Operation], [SemanticChange], UInt64) in
                if s.pending.isEmpty && s.semantic.isEmpty {
                    s.flushScheduled = false
                    return ([:], [], s.enqueued)
                }
                s.inFlight = s.pending
                s.pending = [:]
                s.journaledSinceBatch = 0
                s.inFlightBytes = s.pendingBytes
                s.pendingBytes = 0
                let semantic = s.semantic
                s.semantic = []
                return (s.inFlight, semantic, s.enqueued)
            }
            if batch.isEmpty && semantic.isEmpty {
                completeCommitted(through: ticket, failure: nil)
                return
            }
            let started = ContinuousClock.now
            let result = commit(batch, semantic, applied: journal.map { ($0.run, ticket) })
            let n = batch.count + semantic.count
            let took = ContinuousClock.now - started
            switch result {
            case .success(let bytes):
                let rooms = state.withLock { s -> [EventLoopPromise<Void>] in
                    s.inFlight = [:]
                    s.inFlightBytes = 0
                    s.failure = nil
                    s.unsynced = true
                    s.bytesInFile = bytes
                    s.counters.batches += 1
                    s.counters.writes += n
                    // Only batches big enough to time say how fast the disk is.
                    let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
                    s.counters.commitMicroseconds += Int(min(seconds * 1e6, 1e12))
                    if n >= 100, seconds > 0 { s.commitRate = 0.8 * s.commitRate + 0.2 * (Double(n) / seconds) }
                    guard !overBound(&s) else { return [] }
                    defer { s.roomWaiters = [] }
                    return s.roomWaiters
                }
                for p in rooms { p.succeed(()) }
                completeCommitted(through: ticket, failure: nil)
                // With `everysec`, journal files go after the commit is synced (syncEverySecond).
                if fsync == .no { journal?.deleteCommitted(through: ticket) }
                backoff = 50_000
                if maxBytes > 0 && bytes > maxBytes { evict(over: bytes) }
                if fsync == .everysec { syncEverySecond() }
            case .failure(let error):
                giveUpAt = giveUpAt ?? .now + Self.closeDeadline
                // Nothing acknowledged is dropped: the batch goes back in front of what came
                // since, and is tried again after a pause. Meanwhile callers refuse new writes.
                let (rooms, closing) = state.withLock { s -> ([EventLoopPromise<Void>], Bool) in
                    for (key, op) in s.inFlight where s.pending[key] == nil { s.pending[key] = op }
                    s.inFlight = [:]
                    s.pendingBytes += s.inFlightBytes
                    s.inFlightBytes = 0
                    s.semantic = semantic + s.semantic
                    s.failure = "\(error)"
                    s.counters.writeErrors += n
                    // Writers waiting for room learn now that the disk fails, not when it recovers.
                    defer { s.roomWaiters = [] }
                    return (s.roomWaiters, s.closing)
                }
                for p in rooms { p.fail(SQLiteError(code: 0, message: "\(error)")) }
                completeCommitted(through: 0, failure: "\(error)")
                if closing, let giveUpAt, ContinuousClock.now >= giveUpAt {
                    let lost = state.withLock { $0.pending.count + $0.semantic.count }
                    logger.critical("shutting down with writes the disk would not take; they are lost",
                                    metadata: ["writes": "\(lost)", "error": "\(error)", "path": "\(path)"])
                    return
                }
                if state.withLock({ $0.closed }) { return }
                usleep(backoff)
                backoff = min(backoff * 2, 1_000_000)
            }
        }
    }

    /// Writes what the journal buffer holds, until it is empty; on the journal thread. A failed
    /// write keeps the records in front of what came since and refuses new writes until the disk
    /// takes them again.
    func writeJournal() {
        guard let journal else { return }
        var backoff: UInt32 = 10_000
        var lastSync = ContinuousClock.now
        while true {
            // A millisecond of company for each write: fewer wake-ups of this thread (each one
            // takes the core from an event loop: `perf`, finish_task_switch), at the price of
            // what `kill -9` can lose of acknowledged writes: about that millisecond.
            usleep(1_000)
            let taken = state.withLock { s -> (ByteBuffer, UInt64)? in
                if s.journalBuffer.readableBytes == 0 {
                    s.journalScheduled = false
                    return nil
                }
                var bytes = ByteBuffer()
                swap(&bytes, &s.journalBuffer)
                return (bytes, s.enqueued)
            }
            guard let (bytes, through) = taken else { return }
            do {
                try journal.write(bytes, through: through)
                let rooms = state.withLock { s -> [EventLoopPromise<Void>] in
                    s.journalFailure = nil
                    s.journaledSinceBatch += bytes.readableBytes
                    guard !overBound(&s) else { return [] }
                    defer { s.roomWaiters = [] }
                    return s.roomWaiters
                }
                for p in rooms { p.succeed(()) }
                backoff = 10_000
                if fsync == .everysec, ContinuousClock.now - lastSync >= .seconds(1) {
                    syncJournal(journal)
                    lastSync = .now
                }
            } catch {
                logger.error("journal write failed; retrying", metadata: ["error": "\(error)", "path": "\(path)"])
                let rooms = state.withLock { s -> [EventLoopPromise<Void>] in
                    var rest = bytes
                    rest.writeBuffer(&s.journalBuffer)
                    s.journalBuffer = rest
                    s.journalFailure = "\(error)"
                    defer { s.roomWaiters = [] }
                    return s.roomWaiters
                }
                for p in rooms { p.fail(error) }
                if state.withLock({ $0.closed }) { return }
                usleep(backoff)
                backoff = min(backoff * 2, 1_000_000)
            }
        }
    }

    /// Whether acknowledgements wait for room (see ``State/overBound(_:journaling:)``). `inout`,
    /// under the lock: a copy of the state would retain each of its collections on every write.
    func overBound(_ s: inout State) -> Bool { s.overBound(maxPendingBytes, journaling: journal != nil) }

    /// Past this many bytes in memory for the disk, writes are refused (``writeRefusal``)
    /// rather than queued. The pending bound only holds acknowledgements back, which stops a
    /// writer that waits for them; a client that pipelines and closes without reading, or a read
    /// that writes back a copy (LLM.GET's backfill), would otherwise grow the queue without end
    /// — and past ByteBuffer's 4 GiB, a crash.
    public var hardMaxPendingBytes: Int { 2 * min(maxPendingBytes, 1 << 29) }

    /// Why a write would be refused now: the file cannot be written (`notPersisted`), or the
    /// queue is past ``hardMaxPendingBytes`` (`queueFull`). Checked before anything is written,
    /// so a refused write changes nothing; concurrent writers may each add one write past it.
    public var writeRefusal: StoreFailure? { refusal(removing: false) }

    /// Why a removal (a delete, a flush, a verdict) would be refused now: only when the file
    /// cannot be written. Removals are never refused for a full queue: each queues a key at
    /// most, of an entry that a write the bound admitted put there, and refusing one would
    /// leave what LLM.SET must take back ("both layers or neither") or a verdict retires.
    public var removalRefusal: StoreFailure? { refusal(removing: true) }

    func refusal(removing: Bool) -> StoreFailure? {
        state.withLock { s in
            if let why = s.failure ?? s.journalFailure { return .notPersisted(why) }
            if removing { return nil }
            let held = s.queuedBytes + s.journalBuffer.readableBytes
            guard held > hardMaxPendingBytes else { return nil }
            s.counters.refusedFull += 1
            return .queueFull("\(held) bytes wait for the disk; the bound is \(hardMaxPendingBytes)")
        }
    }

    /// The queue is past its pending bound: a write now would hold its acknowledgement. Writes
    /// nobody waits for (a backfilled copy) are skipped then.
    public var isOverPendingBound: Bool { state.withLock { overBound(&$0) } }

    /// `fdatasync` of the journal's file, on the journal thread.
    func syncJournal(_ journal: WriteJournal) {
        if let error = journal.sync() { logger.error("journal fdatasync failed", metadata: ["error": "\(error)", "path": "\(path)"]) }
    }

    /// With the journal: waits (up to ``applyWindow``) for more entry writes before a commit, so
    /// that a key written many times is committed once. Ends early when a quarter of the pending
    /// bound is reached, when semantic changes wait (they are not journaled), when writers wait
    /// for room or someone waits in `flush()`, or at shutdown.
    func gatherForApplyWindow() {
        let deadline = ContinuousClock.now + applyWindow
        while ContinuousClock.now < deadline {
            let enough = state.withLock { s in
                s.pendingBytes >= maxPendingBytes / 4 || !s.semantic.isEmpty || s.closing || s.closed || s.flushWaiters > 0
                    || s.journaledSinceBatch >= Self.maxJournalBacklog || !s.roomWaiters.isEmpty
            }
            if enough { return }
            usleep(5_000)
        }
    }

    /// Wakes the `fsync always` writers whose changes are committed (or failed).
    func completeCommitted(through ticket: UInt64, failure: String?) {
        let (done, failed) = state.withLock { s -> ([EventLoopPromise<Void>], [EventLoopPromise<Void>]) in
            if failure == nil { s.committed = max(s.committed, ticket) }
            var done: [EventLoopPromise<Void>] = [], failed: [EventLoopPromise<Void>] = []
            while let first = s.durableWaiters.first {
                if first.0 <= s.committed {
                    done.append(first.1)
                } else if failure != nil {
                    failed.append(first.1)
                } else {
                    break
                }
                s.durableWaiters.removeFirst()
            }
            return (done, failed)
        }
        for p in done { p.succeed(()) }
        for p in failed { p.fail(SQLiteError(code: 0, message: failure ?? "commit failed")) }
    }

    /// One transaction for the batch; the file's size after it.
    /// `applied`: the journal run and change this batch brings the file up to, recorded in the
    /// same transaction (see ``replayJournal(_:)``).
    func commit(_ batch: [ByteBuffer: Operation], _ semantic: [SemanticChange] = [],
                applied: (run: UInt64, change: UInt64)? = nil) -> Result<Int, SQLiteError> {
        writer.withLock { db -> Result<Int, SQLiteError> in
            do throws(SQLiteError) {
                try db.execute("BEGIN")
                for (key, op) in batch {
                    switch op {
                    case .set(let value, let meta):
                        let stmt = try db.statement(
                            "INSERT INTO entries(key, value, created_at, expires_at, tokens, cost, tag, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(key) DO UPDATE SET value=excluded.value, created_at=excluded.created_at, expires_at=excluded.expires_at, tokens=excluded.tokens, cost=excluded.cost, tag=excluded.tag, kind=excluded.kind")
                        stmt.bind(1, key)
                        stmt.bind(2, value)
                        stmt.bind(3, meta.createdAt)
                        stmt.bind(4, meta.expiresAt)
                        stmt.bind(5, meta.tokens)
                        stmt.bind(6, meta.cost)
                        stmt.bind(7, ByteBuffer(string: SavingsTags.shared.name(of: meta.tag)))
                        stmt.bind(8, Int64(meta.kind.rawValue))
                        try stmt.run()
                    case .delete:
                        let stmt = try db.statement("DELETE FROM entries WHERE key = ?1")
                        stmt.bind(1, key)
                        try stmt.run()
                    }
                }
                for change in semantic { try apply(change, db) }
                if let applied {
                    let stmt = try db.statement(
                        "INSERT INTO journal_applied(id, run, change) VALUES (1, ?1, ?2) ON CONFLICT(id) DO UPDATE SET run=excluded.run, change=excluded.change")
                    stmt.bind(1, Int64(bitPattern: applied.run))
                    stmt.bind(2, Int64(bitPattern: applied.change))
                    try stmt.run()
                }
                try db.execute("COMMIT")
                return .success(try Self.bytesInFile(db))
            } catch {
                logger.error("SQLite batch of \(batch.count + semantic.count) writes failed; retrying", metadata: ["error": "\(error)", "path": "\(path)"])
                try? db.execute("ROLLBACK")
                return .failure(error)
            }
        }
    }

    static func bytesInFile(_ db: SQLiteConnection) throws(SQLiteError) -> Int {
        let stmt = try db.statement("SELECT bytes FROM usage WHERE id = 1")
        defer { stmt.finish() }
        guard try stmt.step() else { return 0 }
        return Int(stmt.int64(0))
    }

    func apply(_ change: SemanticChange, _ db: SQLiteConnection) throws(SQLiteError) {
        switch change {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt, let worth):
            let stmt = try db.statement("INSERT INTO sem_entries(ns, scope, prompt, response, embedder, vector, created_at, expires_at, tokens, cost, tag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT(ns, scope, prompt) DO UPDATE SET response=excluded.response, embedder=excluded.embedder, vector=excluded.vector, created_at=excluded.created_at, expires_at=excluded.expires_at, tokens=excluded.tokens, cost=excluded.cost, tag=excluded.tag")
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
            stmt.bind(9, worth.tokens)
            stmt.bind(10, worth.cost)
            stmt.bind(11, ByteBuffer(string: SavingsTags.shared.name(of: worth.tag)))
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
        case .verdicts(let ns, let scope, let prompt, let createdAt, let verdicts):
            // Only for that version of the entry: verdicts never outlive it nor pass to a new answer.
            if verdicts.condemnsEntry {
                let stmt = try db.statement("DELETE FROM sem_entries WHERE ns = ?1 AND scope = ?2 AND prompt = ?3 AND created_at = ?4")
                stmt.bind(1, ByteBuffer(string: ns))
                stmt.bind(2, ByteBuffer(string: scope))
                stmt.bind(3, ByteBuffer(string: prompt))
                stmt.bind(4, createdAt)
                try stmt.run()
                return
            }
            let stmt = try db.statement("""
                INSERT INTO sem_verdicts(ns, scope, prompt, verdicts) SELECT ?1, ?2, ?3, ?4
                WHERE EXISTS (SELECT 1 FROM sem_entries WHERE ns = ?1 AND scope = ?2 AND prompt = ?3 AND created_at = ?5)
                ON CONFLICT(ns, scope, prompt) DO UPDATE SET verdicts = excluded.verdicts
                """)
            stmt.bind(1, ByteBuffer(string: ns))
            stmt.bind(2, ByteBuffer(string: scope))
            stmt.bind(3, ByteBuffer(string: prompt))
            stmt.bind(4, ByteBuffer(string: verdicts.encoded))
            stmt.bind(5, createdAt)
            try stmt.run()
        }
    }

    /// Deletes the oldest rows (entries and semantic entries together, by creation time) until
    /// the file is under 90% of its bound — row by row, counting their bytes, so a few large rows
    /// do not take hundreds of small ones with them; rows with a write pending are left alone
    /// (they are about to be rewritten). Runs on the writer thread.
    func evict(over bytes: Int) {
        let target = maxBytes / 10 * 9
        var evictedKeys: [ByteBuffer] = []
        var evictedSemantic: [SemanticRow] = []
        var rows = 0
        _ = writer.withLock { db -> Bool in
            do {
                var size = bytes
                while size > target {
                    try db.execute("BEGIN")
                    let oldest = try db.statement("SELECT key, created_at, length(key) + length(value) + 96 FROM entries ORDER BY created_at LIMIT 256")
                    var candidates: [(ByteBuffer, Int64, Int)] = []
                    while try oldest.step() { candidates.append((oldest.blob(0), oldest.int64(1), Int(oldest.int64(2)))) }
                    let oldestSemantic = try db.statement(
                        "SELECT ns, scope, prompt, created_at, length(ns) + length(scope) + length(prompt) + length(response) + length(vector) + 96 FROM sem_entries ORDER BY created_at LIMIT 256")
                    var semantic: [(ByteBuffer, ByteBuffer, ByteBuffer, Int64, Int)] = []
                    while try oldestSemantic.step() {
                        semantic.append((oldestSemantic.blob(0), oldestSemantic.blob(1), oldestSemantic.blob(2), oldestSemantic.int64(3), Int(oldestSemantic.int64(4))))
                    }
                    if candidates.isEmpty && semantic.isEmpty {
                        try db.execute("COMMIT")
                        break
                    }
                    let busy = state.withLock { s in Set(candidates.map(\.0).filter { s.pending[$0] != nil || s.inFlight[$0] != nil }) }
                    let deleteEntry = try db.statement("DELETE FROM entries WHERE key = ?1")
                    let deleteSemantic = try db.statement("DELETE FROM sem_entries WHERE ns = ?1 AND scope = ?2 AND prompt = ?3")
                    // Merge the two lists by age, oldest first, until enough bytes are freed.
                    var e = 0, m = 0, deleted = 0
                    while size > target && (e < candidates.count || m < semantic.count) {
                        let entryNext = e < candidates.count && (m >= semantic.count || candidates[e].1 <= semantic[m].3)
                        if entryNext {
                            let (key, _, bytes) = candidates[e]
                            e += 1
                            if busy.contains(key) { continue }
                            deleteEntry.bind(1, key)
                            try deleteEntry.run()
                            evictedKeys.append(key)
                            size -= bytes
                        } else {
                            let (ns, scope, prompt, created, bytes) = semantic[m]
                            m += 1
                            deleteSemantic.bind(1, ns)
                            deleteSemantic.bind(2, scope)
                            deleteSemantic.bind(3, prompt)
                            try deleteSemantic.run()
                            evictedSemantic.append(SemanticRow(namespace: String(buffer: ns), scope: String(buffer: scope), prompt: String(buffer: prompt),
                                                               createdAt: created))
                            size -= bytes
                        }
                        deleted += 1
                    }
                    rows += deleted
                    try db.execute("COMMIT")
                    size = try Self.bytesInFile(db)
                    if deleted == 0 { break }  // everything this old is being rewritten: try after the next commit
                }
                state.withLock { s in
                    s.bytesInFile = size
                    s.counters.evictedRows += rows
                }
                logger.debug("evicted the oldest rows", metadata: ["rows": "\(rows)", "bytes_before": "\(bytes)", "bytes_after": "\(size)"])
                return true
            } catch {
                try? db.execute("ROLLBACK")
                logger.error("SQLite eviction failed", metadata: ["error": "\(error)", "path": "\(path)"])
                return false
            }
        }
        if !evictedKeys.isEmpty, let handler = evictionHandler.withLock({ $0 }) { handler(evictedKeys) }
        if !evictedSemantic.isEmpty, let handler = semanticEvictionHandler.withLock({ $0 }) { handler(evictedSemantic) }
    }

    /// `everysec`: a passive checkpoint at most once a second; it syncs the WAL, so a commit
    /// is durable against power loss within about a second.
    func syncEverySecond() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Int64(ts.tv_sec)
        guard now > lastSync.load(ordering: .relaxed) else { return }
        lastSync.store(now, ordering: .relaxed)
        let committed = state.withLock { s -> UInt64 in
            s.unsynced = false
            return s.committed
        }
        let synced = checkpointSynced(mode: "PASSIVE")
        // The checkpoint synced the WAL: what was committed before it survives a power loss, so
        // the journal files holding only such changes can go.
        if synced { journal?.deleteCommitted(through: committed) }
    }

    /// Checkpoints the WAL; true when every frame was copied into the file, which SQLite does only
    /// after syncing the WAL (a checkpoint that readers held back may sync nothing).
    func checkpointSynced(mode: String) -> Bool {
        writer.withLock { db -> Bool in
            do {
                db.resetStatements()
                let stmt = try db.statement("PRAGMA wal_checkpoint(\(mode))")
                defer { stmt.finish() }
                guard try stmt.step() else { return false }
                let busy = stmt.int64(0), log = stmt.int64(1), copied = stmt.int64(2)
                return busy == 0 && log == copied
            } catch {
                logger.warning("SQLite checkpoint failed", metadata: ["error": "\(error)"])
                return false
            }
        }
    }

    /// `everysec`: checkpoints when a commit since the last one is not yet synced; housekeeping
    /// calls this every second, so the last commits of a burst do not wait for the next write.
    public func syncIfDue() {
        if fsync == .everysec, let journal, let journalPool {
            journalPool.submit { [self] poolState in
                guard case .active = poolState else { return }
                syncJournal(journal)
            }
        }
        guard fsync == .everysec, state.withLock({ $0.unsynced }) else { return }
        writerPool.submit { [self] poolState in
            guard case .active = poolState else { return }
            syncEverySecond()
        }
    }

    /// Waits until everything queued so far is committed (shutdown, tests).
    public func flush() async {
        state.withLock { $0.flushWaiters += 1 }
        defer { state.withLock { $0.flushWaiters -= 1 } }
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
        if let refusal = readBytesRefusal() { return eventLoop.makeFailedFuture(refusal) }
        guard queuedReads.add(1, ordering: .relaxed).newValue <= maxQueuedReads else {
            queuedReads.subtract(1, ordering: .relaxed)
            state.withLock { $0.counters.readsRefused += 1 }
            return eventLoop.makeFailedFuture(SQLiteError(code: 0, message: "too many reads waiting for the disk"))
        }
        return readerPool.runIfActive(eventLoop: eventLoop) { [self] in
            defer { queuedReads.subtract(1, ordering: .relaxed) }
            // Checked again when its turn comes: reads queued while little was waiting must
            // not all add their rows on top of what is waiting now.
            if let refusal = readBytesRefusal() { throw refusal }
            let row = try readFromDisk(key, now: now)
            if let row { readBytesWaiting.add(row.0.readableBytes, ordering: .relaxed) }
            return row
        }.map { [self] row in
            // Taken by its event loop: from here it is a reply's (see ClientOutputMemory).
            if let row { readBytesWaiting.subtract(row.0.readableBytes, ordering: .relaxed) }
            return row
        }
    }

    /// The error a read gets (counted as refused) while more than ``maxReadBytesWaiting`` of
    /// rows wait for their event loops; nil while it may go ahead.
    func readBytesRefusal() -> SQLiteError? {
        guard readBytesWaiting.load(ordering: .relaxed) > maxReadBytesWaiting else { return nil }
        state.withLock { $0.counters.readsRefused += 1 }
        return SQLiteError(code: 0, message: "too many bytes read waiting for their event loops")
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

    /// One row of a key listing (SCAN, KEYS, FLUSHDB).
    public struct KeyRow: Sendable {
        public var key: ByteBuffer
        public var expiresAt: Int64
        public var kind: EntryKind
    }

    /// Up to `limit` keys in the file's order (bytewise), after `after` (from the first when
    /// nil), with their expiry and kind; off the caller's thread. Rows still queued are not
    /// among them: see ``committed(on:)``.
    public func keys(after: [UInt8]?, limit: Int, on eventLoop: any EventLoop) -> EventLoopFuture<[KeyRow]> {
        readerPool.runIfActive(eventLoop: eventLoop) { [self] in
            let connection = readers.withLock { $0.popLast() }
            let db = try connection ?? SQLiteConnection(path: path)
            defer { if connection != nil { readers.withLock { $0.append(db) } } }
            let stmt = try db.statement(after == nil
                ? "SELECT key, expires_at, kind FROM entries ORDER BY key LIMIT ?2"
                : "SELECT key, expires_at, kind FROM entries WHERE key > ?1 ORDER BY key LIMIT ?2")
            defer { stmt.finish() }
            if let after { stmt.bind(1, ByteBuffer(bytes: after)) }
            stmt.bind(2, Int64(limit))
            var rows: [KeyRow] = []
            while try stmt.step() {
                rows.append(KeyRow(key: stmt.blob(0), expiresAt: stmt.int64(1),
                                   kind: EntryKind(rawValue: UInt8(truncatingIfNeeded: stmt.int64(2))) ?? .string))
            }
            return rows
        }
    }

    /// Succeeds once every write queued before the call is in the file (a listing that starts
    /// then sees every key written before it).
    public func committed(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        // The last change queued now: waits for that one only (later writes do not extend the
        // wait), and fails with the disk's error if its commit fails.
        durable(state.withLock { $0.enqueued }, on: eventLoop)
    }

    func read(_ key: ByteBuffer, now: Int64, db: SQLiteConnection) throws -> (ByteBuffer, EntryMeta)? {
        let stmt = try db.statement("SELECT value, created_at, expires_at, tokens, cost, tag, kind FROM entries WHERE key = ?1")
        defer { stmt.finish() }
        stmt.bind(1, key)
        guard try stmt.step() else { return nil }
        let meta = EntryMeta(createdAt: stmt.int64(1), expiresAt: stmt.int64(2), tokens: stmt.int64(3), cost: stmt.double(4),
                             tag: SavingsTags.shared.id(for: String(buffer: stmt.blob(5))),
                             kind: EntryKind(rawValue: UInt8(truncatingIfNeeded: stmt.int64(6))) ?? .string)
        if meta.isExpired(at: now) { return nil }
        return (stmt.blob(0), meta)
    }

    // MARK: Housekeeping

    /// Deletes expired rows, on the writer thread. Returns how many. Cache entries expired less
    /// than `keepingExpiredFor` ms ago stay, for stale reads (`--max-stale`).
    public func deleteExpired(now: Int64, keepingExpiredFor retention: Int64 = 0, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        writerPool.runIfActive(eventLoop: eventLoop) { [self] in
            try writer.withLock { db -> Int in
                let stmt = try db.statement("DELETE FROM entries WHERE expires_at != 0 AND expires_at <= ?1")
                stmt.bind(1, now.subtractingSaturating(max(retention, 0)))
                try stmt.run()
                let removed = db.changes
                let sem = try db.statement("DELETE FROM sem_entries WHERE expires_at != 0 AND expires_at <= ?1")
                sem.bind(1, now)
                try sem.run()
                let total = removed + db.changes
                let bytes = try Self.bytesInFile(db)
                state.withLock { $0.bytesInFile = bytes }
                return total
            }
        }
    }

    /// Flushes, then stops the threads. Later writes are dropped.
    public func close() async {
        state.withLock { $0.closing = true }
        await flush()
        if let journal, let journalPool {
            // Everything is in the file now: the journal is not needed at the next start.
            try? await journalPool.runIfActive { [self] in
                if state.withLock({ $0.pending.isEmpty && $0.inFlight.isEmpty && $0.failure == nil }), checkpointSynced(mode: "TRUNCATE") {
                    journal.removeAll()
                }
            }
            try? await journalPool.shutdownGracefully()
        }
        let waiters = state.withLock { s -> [EventLoopPromise<Void>] in
            s.closed = true
            defer {
                s.roomWaiters = []
                s.durableWaiters = []
            }
            return s.roomWaiters + s.durableWaiters.map(\.1)
        }
        for p in waiters { p.fail(SQLiteError(code: 0, message: "store closed")) }
        try? await writerPool.shutdownGracefully()
        try? await readerPool.shutdownGracefully()
    }
}

extension SQLiteStore {
    /// Queues a write of `key` (owned buffers: the queue keeps them until the commit).
    @discardableResult
    public func store(_ key: ByteBuffer, value: ByteBuffer, meta: EntryMeta) -> Admission {
        enqueue(key: key, .set(value: value, meta: meta))
    }

    /// Queues a delete of `key`.
    @discardableResult
    public func delete(_ key: ByteBuffer) -> Admission {
        enqueue(key: key, .delete)
    }

    /// Counters for STATS, as (name, value).
    public func statistics() -> [(String, Int)] {
        let (c, bytes, failing, unjournaled) = state.withLock {
            ($0.counters, $0.bytesInFile, $0.failure != nil || $0.journalFailure != nil, $0.journalBuffer.readableBytes)
        }
        return [("batches", c.batches), ("commit_us", c.commitMicroseconds), ("writes", c.writes), ("write_errors", c.writeErrors), ("reads", c.reads),
                ("bytes", bytes), ("max_bytes", maxBytes), ("evicted_rows", c.evictedRows), ("reads_refused", c.readsRefused),
                ("failing", failing ? 1 : 0), ("journal_unwritten_bytes", unjournaled)]
    }
}
