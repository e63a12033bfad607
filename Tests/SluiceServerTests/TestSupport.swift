import Foundation
import Logging
import NIOPosix
import NIOCore
import NIOEmbedded
import SluiceBackends
import SluiceDomain
import Synchronization
@testable import SluiceServer

/// Clocks the test moves by hand (both at once, unless it steps the wall clock alone).
final class ManualClock: TimeSource {
    let now = Atomic<Int64>(1_700_000_000_000)
    let monotonic = Atomic<Int64>(1_000_000)
    func nowMilliseconds() -> Int64 { now.load(ordering: .relaxed) }
    func monotonicMilliseconds() -> Int64 { monotonic.load(ordering: .relaxed) }
    func advance(_ ms: Int64) {
        now.add(ms, ordering: .relaxed)
        monotonic.add(ms, ordering: .relaxed)
    }
    /// An NTP step: the wall clock jumps, the monotonic one does not.
    func stepWallClock(_ ms: Int64) { now.add(ms, ordering: .relaxed) }
}

/// One connection handler on a test channel, wired as `SluiceNode` wires the embedded mode.
struct Harness {
    let channel: NIOAsyncTestingChannel
    let counters: ServerCounters
    let clock: ManualClock
    let store: SQLiteStore?
    /// The store's directory, removed by ``close()``.
    var directory: URL?

    /// Loaded once for all tests (3.9 MB).
    static let embedder = SluiceNode.loadEmbedder(logger: Logger(label: "test"))
    static let lanes: [NIOThreadPool] = (0..<2).map { _ in
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }

    static func make(configure: (inout ServerConfiguration) -> Void = { _ in }, l2: Bool = false, l1Capacity: Int = 1 << 24,
                     counters: ServerCounters = ServerCounters()) async throws -> Harness {
        var config = ServerConfiguration()
        configure(&config)
        let clock = ManualClock()
        var store: SQLiteStore?, directory: URL?
        if l2 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-srv-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            directory = dir
            store = try SQLiteStore(path: dir.appendingPathComponent("sluice.db").path)
        }
        let keyspace = Keyspace(l1Capacity: l1Capacity, shardCount: 4, tracksL2: store != nil)
        var harness = try await make(config: config, clock: clock, store: store, cache: EmbeddedExactCache(keyspace: keyspace, store: store),
                                     counters: counters)
        harness.directory = directory
        return harness
    }

    /// A harness around a given exact cache (the rest embedded).
    static func make(config: ServerConfiguration, clock: ManualClock, store: SQLiteStore?, cache: any ExactCache,
                     counters: ServerCounters = ServerCounters()) async throws -> Harness {
        // The key operations over the same entries when the cache is the embedded one; a test's
        // own cache (a failing one) gets them over an L1 of their own.
        let embedded = cache as? EmbeddedExactCache ?? EmbeddedExactCache(keyspace: Keyspace(l1Capacity: 1 << 20, shardCount: 4, tracksL2: false), store: nil)
        let capabilities = SluiceNode.Capabilities(
            cache: cache,
            keys: EmbeddedKeyOperations(cache: embedded, maxValueBytes: config.limits.maxBulkLength, scanCursors: config.maxScanCursors),
            limits: EmbeddedRateLimits(limiter: RateLimiter(maxKeys: config.maxLimitKeys, reservationTTL: config.reservationTTLMilliseconds),
                                       clock: clock),
            breakers: EmbeddedBreakers(registry: BreakerRegistry(maxBreakers: config.maxBreakers)),
            semantic: EmbeddedSemanticStore(cache: SemanticCache(defaultMinScore: config.semanticMinScore, defaultMaxEntries: config.semanticMaxEntries),
                                            store: store, lanes: lanes, offloadEntries: config.semanticOffloadEntries))
        let logger = Logger(label: "test")
        let table = SluiceNode.commandTable(capabilities, embedder: embedder, counters: counters, configuration: config,
                                            startedAt: clock.nowMilliseconds(), logger: logger, policies: PolicyBook(config.policies))
        let settings = ConnectionHandler.Settings(
            table: table, counters: counters, clock: clock, logger: logger, limits: config.limits,
            requiresAuth: config.requirePass != nil, maxClients: config.maxClients,
            outputHardLimit: config.clientOutputHardLimit, outputSoftLimit: config.clientOutputSoftLimit,
            outputSoftSeconds: config.clientOutputSoftSeconds)
        let channel = NIOAsyncTestingChannel()
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(settings: settings))
        }.get()
        try await channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        return Harness(channel: channel, counters: counters, clock: clock, store: store)
    }

    /// Sends bytes and returns every reply byte written in response (waiting for `expect`
    /// bytes when given, for replies that complete later).
    func send(_ wire: String, waitFor expectedBytes: Int? = nil) async throws -> String {
        try await send(bytes: ByteBuffer(string: wire), waitFor: expectedBytes)
    }

    /// Sends raw bytes (binary arguments such as VEC).
    func send(bytes: ByteBuffer, waitFor expectedBytes: Int? = nil) async throws -> String {
        try await channel.writeInbound(bytes)
        var out = ""
        while let b = try await channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        if let expectedBytes {
            while out.utf8.count < expectedBytes {
                let b = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
                out += String(buffer: b)
            }
        }
        return out
    }

    /// Moves the channel's event-loop time (scheduled replies, such as a failed AUTH's) and
    /// returns what was written meanwhile.
    func advance(milliseconds: Int64) async throws -> String {
        await channel.testingEventLoop.advanceTime(by: .milliseconds(milliseconds))
        var out = ""
        while let b = try await channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: b) }
        return out
    }

    /// Sends and collects replies until they end with `suffix` (for replies that come later).
    func send(_ wire: String, until suffix: String) async throws -> String {
        var out = try await send(wire)
        while !out.hasSuffix(suffix) {
            out += String(buffer: try await channel.waitForOutboundWrite(as: ByteBuffer.self))
        }
        return out
    }

    func close() async {
        _ = try? await channel.finish()
        await store?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}
