import CSQLite
import NIOCore

/// One SQLite connection with its prepared statements. Not thread-safe: one thread uses it at
/// a time (the store hands connections out from a pool).
final class SQLiteConnection: @unchecked Sendable {
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// SQLITE_TRANSIENT is a macro Swift can't import: it tells SQLite to copy bound bytes.
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws(SQLiteError) {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(db)
            throw SQLiteError(code: rc, message: "\(path): \(message)")
        }
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        sqlite3_close(db)
    }

    /// Ends every cached statement's run (one still stepping holds a read snapshot, which a
    /// checkpoint or a COMMIT waits for).
    func resetStatements() {
        for (_, stmt) in statements { sqlite3_reset(stmt) }
    }

    func execute(_ sql: String) throws(SQLiteError) {
        resetStatements()
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "error"
            sqlite3_free(error)
            throw SQLiteError(code: rc, message: message)
        }
    }

    /// A cached prepared statement, reset and ready to bind.
    func statement(_ sql: String) throws(SQLiteError) -> Statement {
        if let stmt = statements[sql] {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
            return Statement(stmt: stmt, connection: self)
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        statements[sql] = stmt
        return Statement(stmt: stmt, connection: self)
    }

    /// Rows changed by the last statement.
    var changes: Int { Int(sqlite3_changes(db)) }

    func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)))
    }

    struct Statement {
        let stmt: OpaquePointer
        let connection: SQLiteConnection

        func bind(_ index: Int32, _ bytes: ByteBuffer) {
            _ = bytes.withUnsafeReadableBytes { raw in
                if let base = raw.baseAddress, raw.count > 0 {
                    sqlite3_bind_blob(stmt, index, base, Int32(raw.count), SQLiteConnection.transient)
                } else {
                    // An empty value is a zero-length blob, not NULL.
                    sqlite3_bind_zeroblob(stmt, index, 0)
                }
            }
        }

        func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(stmt, index, value) }
        func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(stmt, index, value) }

        /// true: a row is ready; false: done.
        func step() throws(SQLiteError) -> Bool {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW { return true }
            if rc == SQLITE_DONE { return false }
            throw connection.error(rc)
        }

        /// Runs a statement that returns no rows, and resets it, so it can be bound again.
        func run() throws(SQLiteError) {
            defer { sqlite3_reset(stmt) }
            _ = try step()
        }

        /// Ends a statement that was not stepped to its end (a single-row SELECT): until then it
        /// holds a read snapshot, which keeps checkpoints from reclaiming the WAL.
        func finish() { sqlite3_reset(stmt) }

        func blob(_ column: Int32) -> ByteBuffer {
            let count = Int(sqlite3_column_bytes(stmt, column))
            var buffer = ByteBuffer()
            if count > 0, let base = sqlite3_column_blob(stmt, column) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: base, count: count))
            }
            return buffer
        }

        func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
        func double(_ column: Int32) -> Double { sqlite3_column_double(stmt, column) }
    }
}
