import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import SluiceBackends
@testable import SluiceDomain

/// The embedded read-modify-writes over L1 and the SQLite file: values L1 evicted are read back
/// before the operation is decided; hashes keep their kind through the file, the journal and a
/// restart; SCAN walks the file in key order.
@Suite("Embedded key operations", .scratchDirectory)
struct EmbeddedKeyOperationsTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func tempPath() -> String { ScratchDirectory.databasePath() }

    func b(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }
    func t(_ ms: Int64) -> Timestamp { Timestamp(wall: ms, monotonic: ms) }

    func open(_ path: String, l1: Int) throws -> (EmbeddedKeyOperations, SQLiteStore) {
        let store = try SQLiteStore(path: path, groupCommitWindow: .milliseconds(1))
        let keyspace = Keyspace(l1Capacity: l1, shardCount: 1, tracksL2: true)
        try store.forEachLiveKey(now: 0) { key, expiresAt in
            let hash = keyspace.hasher.hash(key)
            keyspace.withShard(hash: hash) { $0.restore(hash: hash, expiresAt: expiresAt) }
        }
        return (EmbeddedKeyOperations(cache: EmbeddedExactCache(keyspace: keyspace, store: store), maxValueBytes: 1 << 20), store)
    }

    func apply(_ ops: EmbeddedKeyOperations, _ op: KeyOperation, _ key: String, at now: Int64 = 1) async throws -> KeyOperationReply {
        try await ops.apply(op, to: b(key), now: t(now), on: loop).future(on: loop).get().get()
    }

    @Test func incrementsOfValuesOnlyTheFileHolds() async throws {
        // An L1 of ~4 KB holds a handful of the 300 counters: most INCRs read the file first.
        let (ops, store) = try open(tempPath(), l1: 4096)
        for i in 0..<300 { _ = try await apply(ops, .set(Array("\(i)".utf8), expiry: .unchanged, condition: .always, returnOld: false), "n\(i)") }
        await store.flush()
        for i in 0..<300 { #expect(try await apply(ops, .incrementBy(1000), "n\(i)") == .integer(Int64(i + 1000))) }
        for i in stride(from: 0, to: 300, by: 37) {
            let read = try await ops.cache.read(b("n\(i)"), lease: 0, now: t(2), on: loop).future(on: loop).get()
            guard case .hit(let value, _, _) = read else { Issue.record("n\(i) missing"); continue }
            #expect(String(decoding: value.bytes, as: UTF8.self) == "\(i + 1000)")
        }
        await store.close()
    }

    @Test func hashesKeepTheirKindThroughTheFileAndARestart() async throws {
        let path = tempPath()
        do {
            let (ops, store) = try open(path, l1: 1 << 20)
            let pair = KeyOperation.HashPair(Array("f".utf8), Array("v".utf8))
            #expect(try await apply(ops, .hashSet([pair], onlyIfNew: false), "h") == .integer(1))
            #expect(try await apply(ops, .incrementBy(1), "h") == .wrongType)
            await store.close()
        }
        let (ops, store) = try open(path, l1: 1 << 20)
        #expect(try await ops.kind(b("h"), now: t(1), on: loop).future(on: loop).get().get() == .hash)
        let fields = try await ops.hashFields(b("h"), now: t(1), on: loop).future(on: loop).get().get()
        #expect(fields == .fields(HashFields(pairs: [(Array("f".utf8), Array("v".utf8))])))
        #expect(try await apply(ops, .hashDelete([Array("f".utf8)]), "h") == .integer(1))
        #expect(try await ops.kind(b("h"), now: t(1), on: loop).future(on: loop).get().get() == nil)
        await store.close()
    }

    @Test func scanWalksKeysInOrderOnceEach() async throws {
        let (ops, store) = try open(tempPath(), l1: 1 << 20)
        for i in 0..<250 { _ = try await apply(ops, .set([1], expiry: .unchanged, condition: .always, returnOld: false), String(format: "k%03d", i)) }
        _ = try await apply(ops, .hashSet([KeyOperation.HashPair([1], [2])], onlyIfNew: false), "hash")
        var seen: [String] = []
        var cursor: UInt64 = 0
        repeat {
            guard case .page(let next, let keys) = try await ops.scan(from: cursor, count: 40, kind: nil, now: t(1), on: loop).future(on: loop).get().get() else {
                Issue.record("invalid cursor"); break
            }
            seen += keys.map { String(buffer: $0) }
            cursor = next
            // Deleted behind the walk: never comes back; deleted ahead: not returned.
            if seen.count == 40 { _ = try await ops.cache.delete([b("k200")], now: t(1), on: loop).future(on: loop).get() }
        } while cursor != 0
        #expect(seen.count == 250)
        #expect(seen == seen.sorted())
        #expect(!seen.contains("k200"))
        guard case .page(_, let hashes) = try await ops.scan(from: 0, count: 1000, kind: .hash, now: t(1), on: loop).future(on: loop).get().get() else {
            Issue.record("no page"); return
        }
        #expect(hashes == [b("hash")])
        #expect(try await ops.flush(now: t(1), on: loop).future(on: loop).get().get() == 250)
        #expect(try await ops.kind(b("k001"), now: t(1), on: loop).future(on: loop).get().get() == nil)
        await store.close()
    }
}
