import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SluiceBackends
import SluiceDomain
import Synchronization

/// Reclaims expired entries in the background so that memory is freed even for keys nobody
/// reads again: each tick sweeps a slice of every shard's L1, the directory and leases of one
/// shard in turn, one rate-limiter shard in turn (expired reservations, full buckets), and
/// now and then the semantic namespaces and the SQLite rows; and every ~10 s, memory the
/// allocator holds free is given back to the system once there is much of it (``AllocatorMemory``).
public struct HousekeepingService: Service {
    let keyspace: Keyspace
    let limiter: RateLimiter
    let semantic: SemanticCache
    let store: SQLiteStore?
    let clock: any TimeSource
    /// Where the allocator's free memory and its releases are reported (metrics).
    let counters: ServerCounters
    let logger: Logger
    let interval: Duration
    /// Ticks between looks at the allocator's free memory (every ``releaseInterval`` ms).
    let releaseEvery: Int
    let eventLoop: any EventLoop
    /// A delete of expired rows is queued and not yet done.
    let expiring = SharedFlag()
    /// How often the allocator's free memory is looked at (``AllocatorReleasePolicy``: given
    /// back once 64 MiB more is free than after the last time).
    static let releaseInterval: Int64 = 10_000

    public init(keyspace: Keyspace, limiter: RateLimiter, semantic: SemanticCache, store: SQLiteStore?, clock: any TimeSource,
                logger: Logger, intervalMilliseconds: Int64, eventLoop: any EventLoop, counters: ServerCounters) {
        self.eventLoop = eventLoop
        self.counters = counters
        self.keyspace = keyspace
        self.limiter = limiter
        self.semantic = semantic
        self.store = store
        self.clock = clock
        self.logger = logger
        self.interval = .milliseconds(intervalMilliseconds)
        self.releaseEvery = Int(max(1, Self.releaseInterval / max(1, intervalMilliseconds)))
    }

    public func run() async throws {
        var tick = 0
        var release = AllocatorReleasePolicy()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let now = clock.timestamp()
            Self.sweep(keyspace, tick: tick, now: now)
            limiter.sweep(shard: tick % limiter.shardCount, now: now.monotonic)
            if tick % 10 == 0 { semantic.sweep(now: now.wall) }
            if let store {
                // `everysec`: the WAL is synced within about a second of the last commit.
                if tick % 10 == 0 { store.syncIfDue() }
                // SQLite rows: every ~30 s at the default interval. Not awaited: the writer
                // thread may be busy with a long stream of commits, and the in-memory sweeps
                // above must go on meanwhile; one such delete at a time.
                if tick % 300 == 299, expiring.value.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                    let logger = logger, expiring = expiring
                    store.deleteExpired(now: now.wall, keepingExpiredFor: keyspace.staleRetention, on: eventLoop).whenComplete { result in
                        expiring.value.store(false, ordering: .relaxed)
                        if case .success(let removed) = result, removed > 0 {
                            logger.debug("removed expired rows", metadata: ["count": "\(removed)"])
                        }
                    }
                }
            }
            // From the first tick, so that the gauge has a value soon after start-up.
            if tick % releaseEvery == 0 { releaseFreeMemory(&release) }
            tick &+= 1
        }
    }

    /// Hands the allocator's free memory back to the system when much more is free than after
    /// the last time. Here, in the housekeeping task, not on an event loop: the walk locks each
    /// arena in turn (24 ms for 380 MB free; an event loop allocating meanwhile waits as long).
    func releaseFreeMemory(_ policy: inout AllocatorReleasePolicy) {
        let free = AllocatorMemory.freeBytes
        counters.allocatorFreeBytes.store(free, ordering: .relaxed)
        guard policy.shouldRelease(free: free) else { return }
        let started = ContinuousClock.now
        AllocatorMemory.releaseFree()
        // The chunks stay free (only their pages go), so `free` is still the total: no second walk.
        policy.released(free: free)
        counters.allocatorReleases.add(1, ordering: .relaxed)
        logger.debug("gave free memory back to the system", metadata: [
            "free_bytes": "\(free)", "took": "\(ContinuousClock.now - started)",
        ])
    }

    /// One housekeeping step over the keyspace.
    public static func sweep(_ keyspace: Keyspace, tick: Int, now: Timestamp) {
        let full = tick % keyspace.shardCount
        for i in 0..<keyspace.shardCount {
            keyspace.withShard(at: i) { shard in
                shard.sweep(now: now, budget: 256, includingDirectory: i == full)
            }
        }
    }
}
