import NIOCore
import SluiceDomain
#if canImport(Glibc)
import Glibc
#endif

/// The append-only journal of acknowledged exact-cache writes, beside the SQLite file: what
/// makes `everysec` durable at the cost of Redis's AOF (an append per write) rather than of a
/// b-tree upsert per write, so the SQLite file can be brought up to date later, in large batches
/// in which repeated keys coalesce.
///
/// Files are `<db>.wlog.<n>`, each beginning with a header that names the run (process) that
/// wrote it; records carry that run's change numbers. Every SQLite commit records, in the same
/// transaction, the run and the last change it contains; at start-up the files left are replayed
/// in order, skipping the changes the file already has — so a replay never puts an older value
/// over a newer committed one, nor brings back rows deleted since for the size bound. A file is
/// deleted once every change it holds is committed and synced.
///
/// A record: `u32 length` (of what follows after the checksum), `u32 checksum` (of the same), `u64 change`,
/// `u8 op` (1 set, 2 delete, 3 set of a hash — the same layout as 1), then for a set `i64 created_at, i64 expires_at, i64 tokens,
/// f64 cost, u8 tag length, tag, u32 key length, key, value`; for a delete `u32 key length, key`.
/// A torn or corrupt tail (a crash mid-write) ends the replay of its file.
///
/// The writing side is used by one thread at a time (the store's journal thread); the list of
/// full files is shared with the SQLite writer, which deletes them.
final class WriteJournal: @unchecked Sendable {
    struct Record {
        var change: UInt64
        var key: ByteBuffer
        var operation: SQLiteStore.Operation
    }

    /// A file is closed and a new one begun past this size.
    static let maxFileBytes = 64 << 20
    /// File numbers above this are not ours (and `+ 1` on them must not trap).
    static let maxFileNumber = 1_000_000_000
    /// "SLUICEJ1" then the run, little-endian.
    static let magic: UInt64 = 0x314A_4543_4955_4C53
    static let headerBytes = 16

    /// This process's run: random, so that change numbers of different runs never mix.
    let run: UInt64
    /// The length field's own limit. A record holds a key and a value, each up to
    /// `--max-value-size` (at most 1 GiB): 600 MiB here once made a larger value's record read
    /// back as damage. Corruption is caught by the checksum, not by this.
    static let maxRecordBytes = Int(UInt32.max)

    let prefix: String
    /// Written only on the journal thread.
    private var fd: Int32 = -1
    private var number: Int
    private var size = 0
    private var lastChange: UInt64 = 0
    private var unsynced = false
    /// Full files and the last change each holds, oldest first.
    let sealed = Locked<[(number: Int, lastChange: UInt64)]>([])

    /// Opens a new file numbered after every existing one.
    init(databasePath: String) throws(SQLiteError) {
        prefix = databasePath + ".wlog."
        number = (Self.files(prefix: prefix).last?.number ?? 0) + 1
        var random = SystemRandomNumberGenerator()
        run = random.next() | 1
        try open()
    }

    /// Begins a new file, numbered `number` or the next free number after it, with its header.
    /// Never opens an existing file (nor follows a link): what is there may be a journal that
    /// has not been replayed.
    private func open() throws(SQLiteError) {
        var descriptor: Int32 = -1
        var path = ""
        for _ in 0..<64 {
            path = prefix + String(number)
            descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0o644)
            if descriptor >= 0 || errno != EEXIST || number >= Self.maxFileNumber { break }
            number += 1
        }
        guard descriptor >= 0 else { throw SQLiteError(code: 0, message: "\(path): \(String(cString: strerror(errno)))") }
        var header = ByteBuffer()
        header.writeInteger(Self.magic, endianness: .little)
        header.writeInteger(run, endianness: .little)
        let written = header.withUnsafeReadableBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == Self.headerBytes else {
            let message = String(cString: strerror(errno))
            Glibc.close(descriptor)
            unlink(path)
            throw SQLiteError(code: 0, message: "\(path): \(message)")
        }
        fd = descriptor
        size = Self.headerBytes
    }

    /// The run a file's header names; nil: not a journal file (or its header is torn).
    static func run(of contents: inout ByteBuffer) -> UInt64? {
        guard contents.getInteger(at: contents.readerIndex, endianness: .little, as: UInt64.self) == magic,
              let run = contents.getInteger(at: contents.readerIndex + 8, endianness: .little, as: UInt64.self)
        else { return nil }
        contents.moveReaderIndex(forwardBy: headerBytes)
        return run
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Existing journal files, oldest first.
    static func files(prefix: String) -> [(number: Int, path: String)] {
        let slash = prefix.lastIndex(of: "/")
        let directory = slash.map { String(prefix[..<$0]) } ?? "."
        let stem = slash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var found: [(Int, String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            // Regular files numbered as ours only: a directory, a link or a crafted name is left alone.
            guard name.hasPrefix(stem), let n = Int(name.dropFirst(stem.count)), (1...maxFileNumber).contains(n) else { continue }
            let path = directory + "/" + name
            var type = entry.pointee.d_type
            if type == UInt8(DT_UNKNOWN) {
                // Some file systems (XFS without ftype, some network ones) do not say: ask.
                var info = stat()
                guard lstat(path, &info) == 0 else { continue }
                type = (info.st_mode & S_IFMT) == S_IFREG ? UInt8(DT_REG) : 0
            }
            guard type == UInt8(DT_REG) else { continue }
            found.append((n, path))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    // MARK: Records

    static func append(change: UInt64, key: ByteBuffer, _ operation: SQLiteStore.Operation, to buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(0), endianness: .little)  // length, filled in below
        buffer.writeInteger(UInt32(0), endianness: .little)  // checksum, filled in below
        buffer.writeInteger(change, endianness: .little)
        switch operation {
        case .set(let value, let meta):
            buffer.writeInteger(UInt8(meta.kind == .hash ? 3 : 1))
            buffer.writeInteger(meta.createdAt, endianness: .little)
            buffer.writeInteger(meta.expiresAt, endianness: .little)
            buffer.writeInteger(meta.tokens, endianness: .little)
            buffer.writeInteger(meta.cost.bitPattern, endianness: .little)
            if meta.tag == 0 {
                buffer.writeInteger(UInt8(0))  // no tag: no lookup (the common case)
            } else {
                let tag = SavingsTags.shared.name(of: meta.tag).utf8
                buffer.writeInteger(UInt8(min(tag.count, 255)))
                buffer.writeBytes(tag.prefix(255))
            }
            buffer.writeInteger(UInt32(key.readableBytes), endianness: .little)
            buffer.writeImmutableBuffer(key)
            buffer.writeImmutableBuffer(value)
        case .delete:
            buffer.writeInteger(UInt8(2))
            buffer.writeInteger(UInt32(key.readableBytes), endianness: .little)
            buffer.writeImmutableBuffer(key)
        }
        let length = buffer.writerIndex - (start + 8)
        buffer.setInteger(UInt32(length), at: start, endianness: .little)
        // The checksum is filled in by ``seal(_:)`` on the journal thread, not here under the
        // store's lock on an event loop.
    }

    /// Sets the change number of the one record `buffer` holds.
    static func setChange(_ change: UInt64, in buffer: inout ByteBuffer) {
        buffer.setInteger(change, at: buffer.readerIndex + 8, endianness: .little)
    }

    /// Fills in the checksum of every record in `buffer` (whole records, as `append` wrote them).
    static func seal(_ buffer: inout ByteBuffer) {
        var at = buffer.readerIndex
        while let length = buffer.getInteger(at: at, endianness: .little, as: UInt32.self) {
            buffer.setInteger(checksum(buffer, from: at + 8, count: Int(length)), at: at + 4, endianness: .little)
            at += 8 + Int(length)
        }
    }

    /// FNV-1a over 8-byte words (then the tail bytes), folded to 32 bits: catches a torn or
    /// overwritten tail, which is all it is for.
    static func checksum(_ buffer: ByteBuffer, from: Int, count: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            let base = from - buffer.readerIndex
            var i = base
            let end = base + count
            while i + 8 <= end {
                h ^= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                h = h &* 0x0000_0100_0000_01B3
                h ^= h >> 29
                i += 8
            }
            while i < end {
                h ^= UInt64(raw[i])
                h = h &* 0x0000_0100_0000_01B3
                i += 1
            }
            return UInt32(truncatingIfNeeded: h ^ (h >> 32))
        }
    }

    enum Decoded {
        case record(Record)
        /// The end of the file, or a last record cut short by a crash while it was written.
        case end
        /// A whole record that does not check out: the file was damaged.
        case damaged
    }

    /// The next record of `buffer`, consumed.
    static func next(_ buffer: inout ByteBuffer) -> Decoded {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self),
              let sum = buffer.getInteger(at: buffer.readerIndex + 4, endianness: .little, as: UInt32.self)
        else { return .end }
        guard Int(length) <= maxRecordBytes, Int(length) >= 13 else { return .damaged }
        // Past the end: the record being written when the process died.
        guard buffer.readableBytes - 8 >= Int(length) else { return .end }
        guard checksum(buffer, from: buffer.readerIndex + 8, count: Int(length)) == sum else { return .damaged }
        buffer.moveReaderIndex(forwardBy: 8)
        guard var body = buffer.readSlice(length: Int(length)),
              let change = body.readInteger(endianness: .little, as: UInt64.self),
              let op = body.readInteger(as: UInt8.self)
        else { return .damaged }
        switch op {
        case 1, 3:
            guard let created = body.readInteger(endianness: .little, as: Int64.self),
                  let expires = body.readInteger(endianness: .little, as: Int64.self),
                  let tokens = body.readInteger(endianness: .little, as: Int64.self),
                  let cost = body.readInteger(endianness: .little, as: UInt64.self),
                  let tagLength = body.readInteger(as: UInt8.self),
                  let tag = body.readString(length: Int(tagLength)),
                  let keyLength = body.readInteger(endianness: .little, as: UInt32.self),
                  let key = body.readSlice(length: Int(keyLength))
            else { return .damaged }
            let meta = EntryMeta(createdAt: created, expiresAt: expires, tokens: tokens, cost: Double(bitPattern: cost),
                                 tag: SavingsTags.shared.id(for: tag), kind: op == 3 ? .hash : .string)
            return .record(Record(change: change, key: key, operation: .set(value: body, meta: meta)))
        case 2:
            guard let keyLength = body.readInteger(endianness: .little, as: UInt32.self),
                  let key = body.readSlice(length: Int(keyLength))
            else { return .damaged }
            return .record(Record(change: change, key: key, operation: .delete))
        default:
            return .damaged
        }
    }

    static func readWholeFile(_ path: String) throws(SQLiteError) -> ByteBuffer {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SQLiteError(code: 0, message: "\(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SQLiteError(code: 0, message: "\(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return buffer }
            chunk.withUnsafeBytes { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }

    // MARK: Writing (the journal thread)

    /// Appends `bytes` (whole records, the last of them change `through`); begins a new file
    /// past ``maxFileBytes``.
    func write(_ records: ByteBuffer, through: UInt64) throws(SQLiteError) {
        // A new file that could not be begun (disk full at a rotation) is tried again here.
        if fd < 0 { try open() }
        var bytes = records
        Self.seal(&bytes)
        var offset = 0
        let total = bytes.readableBytes
        while offset < total {
            let n = bytes.withUnsafeReadableBytes { raw in Glibc.write(fd, raw.baseAddress! + offset, total - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                // Cut what part of the batch got in, so that the retry's records follow whole
                // ones (the replay stops at the first torn record of a file).
                _ = ftruncate(fd, off_t(size))
                throw SQLiteError(code: 0, message: "journal \(prefix)\(number): \(message)")
            }
            offset += n
        }
        size += total
        lastChange = through
        unsynced = true
        if size >= Self.maxFileBytes {
            _ = fdatasync(fd)
            Glibc.close(fd)
            fd = -1
            sealed.withLock { $0.append((number, lastChange)) }
            number += 1
            unsynced = false
            // The records are written: a new file that cannot be begun now is begun by the next
            // write (which then reports the error), not reported as this write's failure.
            try? open()
        }
    }

    /// Makes what was written durable (`everysec`: once a second). The error, if it failed.
    func sync() -> String? {
        guard unsynced, fd >= 0 else { return nil }
        if fdatasync(fd) != 0 { return String(cString: strerror(errno)) }
        unsynced = false
        return nil
    }

    /// Deletes the full files whose every change is committed to SQLite.
    func deleteCommitted(through committed: UInt64) {
        let done = sealed.withLock { files -> [Int] in
            var done: [Int] = []
            while let first = files.first, first.lastChange <= committed {
                done.append(first.number)
                files.removeFirst()
            }
            return done
        }
        for n in done { unlink(prefix + String(n)) }
    }

    /// After a clean shutdown (everything committed): no file is needed any more.
    func removeAll() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        for (_, path) in Self.files(prefix: prefix) { unlink(path) }
        sealed.withLock { $0 = [] }
    }
}
