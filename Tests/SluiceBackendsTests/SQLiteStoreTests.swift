import Foundation
import Synchronization
import NIOCore
import NIOPosix
import Testing
@testable import SluiceBackends
@testable import SluiceDomain

@Suite("SQLite store (embedded L2)", .scratchDirectory)
struct SQLiteStoreTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func tempPath() -> String { ScratchDirectory.databasePath() }

    func b(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

    @Test func writesSurviveCloseAndReopen() async throws {
        let path = tempPath()
        do {
            let store = try SQLiteStore(path: path)
            store.store(b("k1"), value: b("v1"), meta: EntryMeta(createdAt: 10, expiresAt: 0, tokens: 7, cost: 0.25))
            store.store(b("k2"), value: b("v2"), meta: EntryMeta(createdAt: 11, expiresAt: 5_000))
            store.store(b("gone"), value: b("x"), meta: EntryMeta(createdAt: 12))
            store.delete(b("gone"))
            await store.close()
        }
        let reopened = try SQLiteStore(path: path)
        let v1 = try await reopened.fetch(b("k1"), now: 100, on: loop).get()
        #expect(v1.map { String(buffer: $0.0) } == "v1")
        #expect(v1?.1 == EntryMeta(createdAt: 10, expiresAt: 0, tokens: 7, cost: 0.25))
        #expect(try await reopened.fetch(b("gone"), now: 100, on: loop).get() == nil)
        var keys: [String: Int64] = [:]
        try reopened.forEachLiveKey(now: 100) { key, expiresAt in keys[String(buffer: key)] = expiresAt }
        #expect(keys == ["k1": 0, "k2": 5_000])
        // After its expiry the row is neither listed nor returned.
        #expect(try await reopened.fetch(b("k2"), now: 5_000, on: loop).get() == nil)
        await reopened.close()
    }

    /// Rows read but not yet taken by their event loop count against `maxReadBytesWaiting`:
    /// past it, a read is refused at once (the caller's miss) instead of another row joining
    /// the ones waiting in memory. The loop is held busy so that the first row waits (the one
    /// state a real loop only reaches under a flood).
    @Test func readsAreRefusedWhileTooManyBytesWaitForTheirLoop() async throws {
        let store = try SQLiteStore(path: tempPath(), maxReadBytesWaiting: 512 * 1024)
        store.store(b("big"), value: ByteBuffer(repeating: 7, count: 1 << 20), meta: EntryMeta(createdAt: 0))
        store.store(b("small"), value: b("s"), meta: EntryMeta(createdAt: 0))
        await store.flush()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let busy = group.next()
        let release = DispatchSemaphore(value: 0)
        busy.execute { release.wait() }  // the loop takes nothing until released
        let first = store.fetch(b("big"), now: 1, on: busy)
        let deadline = ContinuousClock.now + .seconds(10)
        while store.readBytesWaiting.load(ordering: .relaxed) == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(store.readBytesWaiting.load(ordering: .relaxed) >= 1 << 20)
        let refused = store.fetch(b("small"), now: 1, on: busy)
        release.signal()
        await #expect(throws: SQLiteError.self) { try await refused.get() }
        #expect(try await first.get()?.0.readableBytes == 1 << 20)
        #expect(store.readBytesWaiting.load(ordering: .relaxed) == 0)
        #expect(try await store.fetch(b("small"), now: 1, on: busy).get().map { String(buffer: $0.0) } == "s")
        #expect(store.counters.readsRefused == 1)
        try await group.shutdownGracefully()
        await store.close()
    }

    @Test func pendingWritesAreVisibleBeforeTheyReachDisk() async throws {
        let store = try SQLiteStore(path: tempPath())
        for i in 0..<500 {
            store.store(b("key\(i)"), value: b("value\(i)"), meta: EntryMeta(createdAt: 0))
        }
        // Whatever was or was not committed yet, every write reads back.
        for i in stride(from: 0, to: 500, by: 37) {
            let found = try await store.fetch(b("key\(i)"), now: 1, on: loop).get()
            #expect(found.map { String(buffer: $0.0) } == "value\(i)")
        }
        // (Flushed first: a delete of a key whose write is still pending replaces it in the
        // queue, and the count below would depend on the writer thread's timing.)
        await store.flush()
        store.delete(b("key0"))
        #expect(try await store.fetch(b("key0"), now: 1, on: loop).get() == nil)
        await store.flush()
        let c = store.counters
        #expect(c.writes == 501)
        #expect(c.batches >= 1 && c.batches <= 501)
        await store.close()
    }

    /// Past `maxBytes` the oldest rows go (entries and semantic entries by age), down to 90%;
    /// the eviction handler hears every evicted key.
    @Test func theFileStaysUnderItsBoundOldestFirst() async throws {
        let store = try SQLiteStore(path: tempPath(), maxBytes: 100_000)
        let evicted = Mutex<[String]>([])
        store.onEvicted { keys in evicted.withLock { $0 += keys.map { String(buffer: $0) } } }
        let value = b(String(repeating: "v", count: 100))
        store.enqueue(.set(namespace: "ns", scope: "", prompt: "old question", response: value, embedder: "e", vector: [1, 0],
                           createdAt: -1, expiresAt: 0))
        for i in 0..<2_000 {
            store.store(b("key\(i)"), value: value, meta: EntryMeta(createdAt: Int64(i)))
            if i % 500 == 499 { await store.flush() }
        }
        await store.flush()
        #expect(store.bytesInFile <= 100_000)
        let gone = evicted.withLock { $0 }
        #expect(gone.count > 1_000)
        #expect(store.counters.evictedRows == gone.count + 1)  // and the semantic row
        #expect(gone.contains("key0") && !gone.contains("key1999"))
        // The newest rows are still there; the oldest are not.
        #expect(try await store.fetch(b("key1999"), now: 0, on: loop).get() != nil)
        #expect(try await store.fetch(b("key0"), now: 0, on: loop).get() == nil)
        var semantic = 0
        try store.forEachSemanticEntry(now: 0) { _ in semantic += 1 }
        #expect(semantic == 0)  // older than every entry: it went first
        await store.close()
    }

    /// A writer faster than the disk is held back: past the pending bound, writes say to wait
    /// for room, and the room comes once the writer catches up.
    @Test func pendingWritesPastTheirBoundHoldTheAcknowledgement() async throws {
        let store = try SQLiteStore(path: tempPath(), maxPendingBytes: 10_000)
        var waits = 0
        for i in 0..<1_000 {
            if case .whenRoom = store.store(b("k\(i)"), value: b(String(repeating: "x", count: 100)), meta: EntryMeta(createdAt: 0)) {
                waits += 1
            }
        }
        #expect(waits > 0)
        try await store.room(on: loop).get()
        await store.flush()
        #expect(store.counters.writes == 1_000)
        await store.close()
    }

    /// Holding acknowledgements back stops only writers that wait for them. Past twice the
    /// pending bound, writes are refused before anything is written (a client that pipelines and
    /// closes, or reads that write copies back, once grew the queue to 13 GB and crashed the
    /// process); removals are still taken, and writes again once the writer has caught up.
    @Test func writesPastTheHardBoundAreRefusedAndRemovalsAreNot() async throws {
        let store = try SQLiteStore(path: tempPath(), maxPendingBytes: 40_000)
        #expect(store.hardMaxPendingBytes == 80_000)
        // The writer is not woken (a flush counts as scheduled): this stands in for a disk far
        // slower than the writes, which no real disk here can be made to be on demand.
        store.state.withLock { $0.flushScheduled = true }
        let cache = EmbeddedExactCache(keyspace: Keyspace(l1Capacity: 1 << 20, shardCount: 1, tracksL2: true), store: store)
        let now = Timestamp(wall: 1, monotonic: 1)
        let value = b(String(repeating: "x", count: 1_000))
        var admitted = 0
        var refused: StoreFailure?
        for i in 0..<1_000 where refused == nil {
            // Past the pending bound an acknowledgement waits for room (not awaited here).
            if case .ready(.failed(let why)) = cache.write(b("k\(i)"), value: value, meta: EntryMeta(createdAt: 1), condition: .always, now: now, on: loop) {
                refused = why
            } else {
                admitted += 1
            }
        }
        guard case .queueFull(let reason) = refused else { Issue.record("no refusal after \(admitted) writes of 1 KB"); return }
        #expect(reason.contains("the bound is 80000"))
        // At the bound: each 1 KB write is held twice (the queue and the journal's buffer).
        #expect(admitted >= 35 && admitted <= 81)
        #expect(store.counters.refusedFull == 1)
        // Refused whole: not in L1 either.
        guard case .miss = try await cache.read(b("k\(admitted)"), lease: 0, now: now, on: loop).future(on: loop).get() else {
            Issue.record("a refused write reached L1"); return
        }
        // Copies nobody waits for are not offered; removals are taken.
        #expect(!cache.takesOptionalWrites)
        #expect(store.removalRefusal == nil)
        // (Its acknowledgement waits for room, as a write's would: awaited once the writer runs.)
        let deletion = cache.delete([b("k0")], now: now, on: loop)
        if case .ready(.failure(let why)) = deletion { Issue.record("delete refused: \(why)") }
        // The writer catches up: writes and copies are taken again.
        store.state.withLock { $0.flushScheduled = false }
        store.delete(b("k1"))  // schedules the writer
        #expect((try? await deletion.future(on: loop).get().get()) == 1)
        await store.flush()
        #expect(store.writeRefusal == nil)
        #expect(cache.takesOptionalWrites)
        await store.close()
    }

    @Test func fsyncAlwaysAcknowledgesAfterTheCommit() async throws {
        let store = try SQLiteStore(path: tempPath(), fsync: .always)
        guard case .whenDurable(let ticket) = store.store(b("k"), value: b("v"), meta: EntryMeta(createdAt: 0)) else {
            Issue.record("fsync always must wait for the commit"); return
        }
        try await store.durable(ticket, on: loop).get()
        #expect(store.counters.writes >= 1)
        await store.close()
    }

    @Test func deleteExpiredRemovesRows() async throws {
        let store = try SQLiteStore(path: tempPath())
        store.store(b("a"), value: b("1"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        store.store(b("b"), value: b("2"), meta: EntryMeta(createdAt: 0, expiresAt: 0))
        await store.flush()
        #expect(try await store.deleteExpired(now: 11, on: loop).get() == 1)
        await store.close()
    }

    @Test func emptyValueStaysEmptyNotNull() async throws {
        let store = try SQLiteStore(path: tempPath())
        store.store(b("e"), value: ByteBuffer(), meta: EntryMeta(createdAt: 0))
        await store.flush()
        let found = try await store.fetch(b("e"), now: 1, on: loop).get()
        #expect(found?.0.readableBytes == 0)
        await store.close()
    }

    @Test func unwritablePathFailsClearly() {
        #expect(throws: SQLiteError.self) { _ = try SQLiteStore(path: "/nonexistent-dir/x/sluice.db") }
    }

    /// The byte count behind --l2-max-bytes, recomputed from the rows.
    func recount(_ path: String) throws -> (Int, Int) {
        let db = try SQLiteConnection(path: path)
        let counted = try SQLiteStore.bytesInFile(db)
        let stmt = try db.statement("""
            SELECT (SELECT coalesce(sum(length(key) + length(value) + 96), 0) FROM entries) +
                   (SELECT coalesce(sum(length(ns) + length(scope) + length(prompt) + length(response) + length(vector) + 96), 0) FROM sem_entries)
            """)
        defer { stmt.finish() }
        _ = try stmt.step()
        return (counted, Int(stmt.int64(0)))
    }

    @Test func replacingASemanticEntryKeepsTheByteCountTrue() async throws {
        let path = tempPath()
        let store = try SQLiteStore(path: path)
        for i in 0..<30 {
            // The same prompt again and again, its answer growing: one row, whatever the count of writes.
            store.enqueue(.set(namespace: "ns", scope: "", prompt: "the prompt", response: ByteBuffer(repeating: 0x61, count: 1000 + i),
                               embedder: "e", vector: [1, 0, 0, 0], createdAt: Int64(i), expiresAt: 0))
            await store.flush()
        }
        store.store(b("k"), value: b("v"), meta: EntryMeta(createdAt: 0))
        store.store(b("k"), value: b("longer value"), meta: EntryMeta(createdAt: 1))
        await store.flush()
        let (counted, actual) = try recount(path)
        #expect(counted == actual)
        #expect(store.bytesInFile == actual)
        await store.close()
    }

    @Test func expiryRunsWhileWritesKeepComing() async throws {
        // The writer thread commits a batch at a time and lets other work in between: a steady
        // stream of writes must not hold back the expiry delete (and housekeeping behind it).
        let store = try SQLiteStore(path: tempPath(), groupCommitWindow: .milliseconds(1))
        store.store(b("old"), value: b("x"), meta: EntryMeta(createdAt: 0, expiresAt: 10))
        await store.flush()
        let writing = Atomic<Bool>(true), producerDone = Atomic<Bool>(false)
        let producer = Task.detached {
            defer { producerDone.store(true, ordering: .relaxed) }
            var i = 0
            // Bounded: about 20 s at most, well past what the delete should need.
            while writing.load(ordering: .relaxed) && i < 2_000_000 {
                store.store(ByteBuffer(string: "k\(i % 1000)"), value: ByteBuffer(string: "v\(i)"), meta: EntryMeta(createdAt: 100))
                i += 1
                if i % 64 == 0 { try? await Task.sleep(for: .microseconds(200)) }
            }
            return i
        }
        let removed = try await store.deleteExpired(now: 1000, on: loop).get()
        let stillWriting = !producerDone.load(ordering: .relaxed)
        writing.store(false, ordering: .relaxed)
        _ = await producer.value
        #expect(removed == 1)
        #expect(stillWriting)  // done while the stream went on, not after it
        await store.close()
    }

    @Test func evictionCountsBytesSoLargeRowsDoNotTakeSmallOnesWithThem() async throws {
        // 20 small entries, then 1 MB answers past a 4 MB bound: each eviction frees about what
        // is needed, and the file stays between the target (90%) and the bound.
        let store = try SQLiteStore(path: tempPath(), maxBytes: 4_000_000)
        let evictedSemantic = Mutex<[SQLiteStore.SemanticRow]>([])
        store.onSemanticEvicted { rows in evictedSemantic.withLock { $0 += rows } }
        for i in 0..<20 { store.store(b("small\(i)"), value: b("v"), meta: EntryMeta(createdAt: Int64(i))) }
        await store.flush()
        let big = ByteBuffer(repeating: 0x61, count: 1_000_000)
        for i in 0..<8 {
            store.enqueue(.set(namespace: "n", scope: "", prompt: "prompt \(i)", response: big, embedder: "e", vector: [1, 0],
                               createdAt: Int64(100 + i), expiresAt: 0))
            await store.flush()
        }
        #expect(store.bytesInFile <= 4_000_000)
        #expect(store.bytesInFile >= 2_500_000)  // not emptied: the 256-row batches once took everything
        var left = 0
        try store.forEachSemanticEntry(now: 0) { _ in left += 1 }
        let gone = evictedSemantic.withLock { $0 }
        #expect(left + gone.count == 8)
        #expect(gone.contains(SQLiteStore.SemanticRow(namespace: "n", scope: "", prompt: "prompt 0", createdAt: 100)))
        await store.close()
    }

    @Test func unjournaledChangesAreBoundedByCountToo() async throws {
        // Nothing commits for a second (the group-commit window). Semantic changes only memory
        // holds until the commit: past the count bound their acknowledgements wait, so kill -9
        // cannot lose more than about half a second of them. Entry writes are in the journal:
        // only the byte bound holds them.
        let store = try SQLiteStore(path: tempPath(), groupCommitWindow: .seconds(1))
        for i in 0..<30_000 {
            guard case .now = store.store(b("k\(i)"), value: b("v"), meta: EntryMeta(createdAt: 0)) else {
                Issue.record("entry write \(i) held back")
                break
            }
        }
        var firstWait: Int?
        for i in 0..<30_000 where firstWait == nil {
            let admission = store.enqueue(.set(namespace: "n", scope: "", prompt: "p\(i)", response: b("r"), embedder: "e", vector: [1, 0],
                                              createdAt: 0, expiresAt: 0))
            if case .whenRoom = admission { firstWait = i }
        }
        #expect(firstWait != nil)
        // About half a second of commits (the rate is measured: 20k/s until a batch says more).
        #expect((firstWait ?? 0) <= 20_000)
        try await store.room(on: loop).get()
        await store.close()
    }

    @Test func theJournalBringsBackWritesTheFileNeverGot() async throws {
        // A store whose writer holds entry writes for 30 s (its apply window) stands in for a
        // process killed before the commit: the writes are only in the journal.
        let path = tempPath()
        let crashed = try SQLiteStore(path: path, groupCommitWindow: .milliseconds(1), applyWindow: .seconds(30))
        for i in 0..<2_000 { crashed.store(b("k\(i)"), value: b("value \(i)"), meta: EntryMeta(createdAt: Int64(i), tokens: Int64(i))) }
        crashed.delete(b("k7"))
        crashed.store(b("k8"), value: b("rewritten"), meta: EntryMeta(createdAt: 9))
        // Wait (bounded) until the journal thread has written everything.
        for _ in 0..<1_000 where crashed.statistics().first(where: { $0.0 == "journal_unwritten_bytes" })?.1 != 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        // The file itself has none of them.
        let raw = try SQLiteConnection(path: path)
        let count = try raw.statement("SELECT count(*) FROM entries")
        #expect(try count.step())
        #expect(count.int64(0) == 0)
        count.finish()

        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.fetch(b("k0"), now: 0, on: loop).get()?.0 == b("value 0"))
        #expect(try await reopened.fetch(b("k1999"), now: 0, on: loop).get()?.1.tokens == 1999)
        #expect(try await reopened.fetch(b("k7"), now: 0, on: loop).get() == nil)
        #expect(try await reopened.fetch(b("k8"), now: 0, on: loop).get()?.0 == b("rewritten"))
        var live = 0
        try reopened.forEachLiveKey(now: 0) { _, _ in live += 1 }
        #expect(live == 1_999)
        // The replayed files are gone; a clean close leaves none either.
        await reopened.close()
        #expect(WriteJournal.files(prefix: path + ".wlog.").isEmpty)
        await crashed.close()
    }

    @Test func aReplayNeverPutsAnOlderValueOverANewerCommittedOne() async throws {
        // The journal holds k=v1 but not the later k=v2 (its append failed, or lagged), while
        // the file committed k=v2: the replay must skip what the file already has.
        let path = tempPath()
        let store = try SQLiteStore(path: path, groupCommitWindow: .milliseconds(1))
        store.store(b("k"), value: b("v1"), meta: EntryMeta(createdAt: 1))
        store.store(b("other"), value: b("o"), meta: EntryMeta(createdAt: 1))
        func journalSize() -> Int {
            let files = WriteJournal.files(prefix: path + ".wlog.")
            return files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        }
        var record = ByteBuffer()
        WriteJournal.append(change: 3, key: b("k"), .set(value: b("v2"), meta: EntryMeta(createdAt: 2)), to: &record)
        // Both first records are in the file (header 16 bytes + two records).
        for _ in 0..<1_000 where journalSize() < 16 + 2 * 40 { try await Task.sleep(for: .milliseconds(5)) }
        await store.flush()
        let before = journalSize()
        store.store(b("k"), value: b("v2"), meta: EntryMeta(createdAt: 2))
        // Wait (bounded) until exactly k=v2's record is in the file, then let SQLite commit it.
        for _ in 0..<1_000 where journalSize() < before + record.readableBytes { try await Task.sleep(for: .milliseconds(5)) }
        #expect(journalSize() == before + record.readableBytes)
        await store.flush()
        // Cut k=v2's record off the journal file: the journal lags the file.
        let files = WriteJournal.files(prefix: path + ".wlog.")
        #expect(files.count == 1)
        #expect(truncate(files[0].path, off_t(before)) == 0)

        let reopened = try SQLiteStore(path: path)
        #expect(try await reopened.fetch(b("k"), now: 0, on: loop).get()?.0 == b("v2"))
        #expect(try await reopened.fetch(b("other"), now: 0, on: loop).get()?.0 == b("o"))
        await reopened.close()
        await store.close()
    }

    @Test func strangeFilesBesideTheJournalAreLeftAlone() async throws {
        let path = tempPath()
        // A huge number (its `+ 1` once trapped at start-up), a directory, a foreign name.
        #expect(FileManager.default.createFile(atPath: path + ".wlog.9223372036854775807", contents: Data("x".utf8)))
        try FileManager.default.createDirectory(atPath: path + ".wlog.4", withIntermediateDirectories: false)
        #expect(FileManager.default.createFile(atPath: path + ".wlog.abc", contents: Data()))
        // A file of ours without a header (a crash while it was begun) is set aside, not fatal.
        #expect(FileManager.default.createFile(atPath: path + ".wlog.2", contents: Data("garbage that is not a journal".utf8)))
        let store = try SQLiteStore(path: path)
        store.store(b("k"), value: b("v"), meta: EntryMeta(createdAt: 1))
        await store.flush()
        #expect(try await store.fetch(b("k"), now: 0, on: loop).get()?.0 == b("v"))
        #expect(FileManager.default.fileExists(atPath: path + ".wlog.2.corrupt"))
        await store.close()
        // Not ours, so not touched.
        for name in [".wlog.9223372036854775807", ".wlog.4", ".wlog.abc"] {
            #expect(FileManager.default.fileExists(atPath: path + name), "\(name)")
        }
    }

    @Test func everyRecordTheServerCanWriteReadsBack() {
        // A key and a value of the largest --max-value-size (1 GiB each, plus the request's slack).
        #expect(WriteJournal.maxRecordBytes >= 2 * (1 << 30) + (1 << 20))
    }

    @Test func aTornJournalTailIsIgnoredAndWhatPrecedesItKept() throws {
        var buffer = ByteBuffer()
        for i in 0..<10 {
            WriteJournal.append(change: UInt64(i + 1), key: b("key\(i)"), .set(value: b("v\(i)"), meta: EntryMeta(createdAt: 1, tag: 0)), to: &buffer)
        }
        WriteJournal.append(change: 11, key: b("gone"), .delete, to: &buffer)
        WriteJournal.seal(&buffer)
        // Cut into the last record (a crash mid-write), then flip a byte of the ninth.
        var torn = buffer.getSlice(at: 0, length: buffer.readableBytes - 3)!
        var read: [String] = []
        var outcome = WriteJournal.next(&torn)
        while case .record(let r) = outcome {
            read.append(String(buffer: r.key))
            outcome = WriteJournal.next(&torn)
        }
        #expect(read == (0..<10).map { "key\($0)" })
        guard case .end = outcome else { Issue.record("a torn tail is not damage"); return }

        var corrupt = buffer
        var offsets: [Int] = []
        var scan = buffer
        while case .record = WriteJournal.next(&scan) { offsets.append(scan.readerIndex) }
        corrupt.setInteger(UInt8(0xFF), at: offsets[7] + 20)  // inside the ninth record
        read = []
        outcome = WriteJournal.next(&corrupt)
        while case .record(let r) = outcome {
            read.append(String(buffer: r.key))
            outcome = WriteJournal.next(&corrupt)
        }
        #expect(read == (0..<8).map { "key\($0)" })
        guard case .damaged = outcome else { Issue.record("a bad checksum is damage"); return }
    }

    @Test func aDurabilityWaitAfterCloseFailsAtOnce() async throws {
        let store = try SQLiteStore(path: tempPath(), fsync: .always)
        await store.close()
        await #expect(throws: SQLiteError.self) { try await store.durable(1, on: loop).get() }
    }
}
