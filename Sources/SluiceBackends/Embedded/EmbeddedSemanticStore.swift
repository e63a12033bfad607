import NIOCore
import NIOPosix
import SluiceDomain
import Synchronization

/// The semantic cache of one process: the in-memory index (``SemanticCache``), with every change
/// also queued for the SQLite file when there is one, so the entries survive a restart.
///
/// Operations on a namespace larger than `offloadEntries` run on a *lane* — one of a few
/// single-thread pools, picked by the namespace's name — not on the event loop: an exact scan
/// of 100,000 vectors takes milliseconds, and neither the loop's other connections nor a write
/// must wait behind it on the loop. One lane per namespace keeps that namespace's operations in
/// the order they were asked (a SEM.GET right after a SEM.SET sees it). Smaller namespaces are
/// served on the event loop, where their scans take microseconds. At most `maxQueued`
/// operations wait for lanes; past that the answer is `busy`.
public final class EmbeddedSemanticStore: SemanticStore {
    public let cache: SemanticCache
    let store: SQLiteStore?
    let lanes: [NIOThreadPool]
    /// The offload bound in entries × dimensions: `offloadEntries` of the built-in embedder's 128.
    let offloadCost: Int
    let maxQueued: Int
    let queued = Atomic<Int>(0)
    /// Operations queued or running on lanes, per namespace (at most `maxQueued` in all).
    let onLanes = Locked<[String: Int]>([:])

    public init(cache: SemanticCache, store: SQLiteStore?, lanes: [NIOThreadPool], offloadEntries: Int, maxQueued: Int = 10_000) {
        precondition(!lanes.isEmpty)
        self.cache = cache
        self.store = store
        self.lanes = lanes
        // Saturating: `.max` means "never" (the fuzzer keeps everything on its one thread),
        // and a wrapped product sent work to a lane instead (found by FuzzCommands in CI).
        let (cost, overflow) = offloadEntries.multipliedReportingOverflow(by: 128)
        self.offloadCost = overflow ? .max : cost
        self.maxQueued = maxQueued
        // Rows the file's bound evicted leave memory too: what is served is what a restart has.
        store?.onSemanticEvicted { [cache] rows in
            for row in rows {
                _ = cache.write(row.namespace, create: false) { $0.delete(row.prompt, scope: row.scope, createdAtMost: row.createdAt) }
            }
        }
    }

    /// Runs `work` on the event loop for a small namespace, on its lane for a large one — or
    /// for any namespace with work still queued on its lane, so that an operation never
    /// overtakes an earlier one (the namespace may have shrunk below the bound meanwhile). A
    /// lookup (`query`: its prompt) goes to the lane too when it reads long prompts — its own,
    /// or the namespace's entries' as candidates: the verifier takes milliseconds over those
    /// whatever the namespace's size.
    func run<T: Sendable>(_ namespace: String, on eventLoop: any EventLoop, busy: T, query: String? = nil,
                          _ work: @escaping @Sendable () -> T) -> Deferred<T> {
        let behindLane = queued.load(ordering: .relaxed) > 0 && onLanes.withLock { $0[namespace] != nil }
        let hints = cache.offloadHints(namespace)
        // `.max`: never offload (the fuzzer runs everything on its one thread).
        let readsLongPrompts = offloadCost != .max && query.map { SemanticNamespace.isLong($0) || hints.holdsLongPrompts } == true
        // The bound is in entries of the built-in embedder's 128 dimensions: a namespace of
        // 4,096-dimension client vectors goes to a lane at 1/32 of the entries.
        guard behindLane || readsLongPrompts || hints.scanCost > offloadCost else { return .ready(work()) }
        guard queued.add(1, ordering: .relaxed).newValue <= maxQueued else {
            queued.subtract(1, ordering: .relaxed)
            return .ready(busy)
        }
        onLanes.withLock { $0[namespace, default: 0] += 1 }
        var hasher = Hasher()
        hasher.combine(namespace)
        let lane = lanes[Int(UInt(bitPattern: hasher.finalize()) % UInt(lanes.count))]
        return .later(lane.runIfActive(eventLoop: eventLoop) { [self] in
            defer {
                onLanes.withLock { counts in
                    counts[namespace, default: 1] -= 1
                    if counts[namespace] == 0 { counts[namespace] = nil }
                }
                queued.subtract(1, ordering: .relaxed)
            }
            return work()
        })
    }

    public func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        set(entry, on: eventLoop, landing: nil)
    }

    /// `landing`: run under the namespace's write lock once the entry is stored (see
    /// ``SemanticCache/set``; the shared store's record of its own changes).
    func set(_ entry: SemanticWrite, on eventLoop: any EventLoop, landing: (@Sendable () -> Void)?) -> Deferred<Result<Void, SemanticFailure>> {
        if let store, let refusal = store.writeRefusal { return .ready(.failure(.store(refusal))) }
        let stored = run(entry.namespace, on: eventLoop, busy: Result<SQLiteStore.Admission, SemanticFailure>.failure(.busy)) { [cache, store] in
            cache.set(entry.namespace, prompt: entry.prompt, response: entry.response, vector: entry.vector, embedder: entry.embedder,
                      scope: entry.scope, createdAt: entry.createdAt, expiresAt: entry.expiresAt, worth: entry.worth,
                      landing: landing).map { evicted -> SQLiteStore.Admission in
                guard let store else { return .now }
                // Rows of entries evicted to make room go too, or the file would keep them all.
                for e in evicted { store.enqueue(.delete(namespace: entry.namespace, scope: e.scope, prompt: e.prompt)) }
                return store.enqueue(SemanticChange(entry))
            }
        }
        return stored.flatMap { [self] result in
            switch result {
            case .failure(let f): return .ready(.failure(f))
            case .success(let admission): return acknowledge(admission, on: eventLoop)
            }
        }
    }

    /// Holds the answer until the store says so (see ``EmbeddedExactCache``).
    func acknowledge(_ admission: SQLiteStore.Admission, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        guard let store else { return .ready(.success(())) }
        let wait: EventLoopFuture<Void>
        switch admission {
        case .now: return .ready(.success(()))
        case .whenRoom: wait = store.room(on: eventLoop)
        case .whenDurable(let ticket): wait = store.durable(ticket, on: eventLoop)
        }
        return .later(wait.map { .success(()) }.recover { .failure(.store(.notPersisted("\($0)"))) })
    }

    public func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>> {
        run(query.namespace, on: eventLoop, busy: .failure(.busy), query: query.prompt) { [cache] in
            cache.get(query.namespace, prompt: query.prompt, vector: query.vector, embedder: query.embedder, scope: query.scope,
                      minScore: query.minScore, now: now)
        }
    }

    public func feedback(_ query: SemanticQuery, good: Bool, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Feedback?, SemanticFailure>> {
        feedback(query, good: good, now: now, on: eventLoop, landing: nil)
    }

    /// `landing`: run under the namespace's write lock with the verdict recorded (see `set`).
    func feedback(_ query: SemanticQuery, good: Bool, now: Int64, on eventLoop: any EventLoop,
                  landing: (@Sendable (SemanticCache.Feedback) -> Void)?) -> Deferred<Result<SemanticCache.Feedback?, SemanticFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(.store(refusal))) }
        let done = run(query.namespace, on: eventLoop, busy: Result<(SemanticCache.Feedback?, SQLiteStore.Admission), SemanticFailure>.failure(.busy),
                       query: query.prompt) { [cache, store] in
            cache.feedback(query.namespace, prompt: query.prompt, vector: query.vector, embedder: query.embedder, scope: query.scope,
                           minScore: query.minScore, good: good, now: now, landing: landing).map { feedback in
                guard let feedback, let store else { return (feedback, .now) }
                return (feedback, store.enqueue(SemanticChange(feedback, namespace: query.namespace)))
            }
        }
        return done.flatMap { [self] result in
            switch result {
            case .failure(let f): return .ready(.failure(f))
            case .success(let (feedback, admission)): return acknowledge(admission, on: eventLoop).map { $0.map { feedback } }
            }
        }
    }

    public func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Result<Bool, SemanticFailure>> {
        delete(namespace: namespace, prompt: prompt, scope: scope, on: eventLoop, landing: nil)
    }

    /// `landing`: run under the namespace's write lock once the entry is gone (see `set`); with
    /// no such namespace, once that is found (nothing to delete has landed all the same).
    func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop,
                landing: (@Sendable () -> Void)?) -> Deferred<Result<Bool, SemanticFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(.store(refusal))) }
        let done = run(namespace, on: eventLoop, busy: Result<(Bool, SQLiteStore.Admission), SemanticFailure>.failure(.busy)) { [cache, store] in
            guard let removed = cache.write(namespace, create: false, { namespace in
                defer { landing?() }
                return namespace.delete(prompt, scope: scope)
            }) else {
                landing?()
                return .success((false, .now))
            }
            guard removed, let store else { return .success((removed, .now)) }
            return .success((true, store.enqueue(.delete(namespace: namespace, scope: scope, prompt: prompt))))
        }
        // Acknowledged as a SET is: after the store's admission (room, or fsync always).
        return done.flatMap { [self] result in
            switch result {
            case .failure(let f): return .ready(.failure(f))
            case .success(let (removed, admission)): return acknowledge(admission, on: eventLoop).map { $0.map { removed } }
            }
        }
    }

    public func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Result<Int, SemanticFailure>> {
        if let store, let refusal = store.removalRefusal { return .ready(.failure(.store(refusal))) }
        let done = run(namespace, on: eventLoop, busy: Result<(Int, SQLiteStore.Admission), SemanticFailure>.failure(.busy)) { [cache, store] in
            let removed = cache.drop(namespace)
            // Nothing in memory: nothing in the file either (it mirrors memory).
            guard removed > 0, let store else { return .success((removed, .now)) }
            return .success((removed, store.enqueue(.drop(namespace: namespace))))
        }
        return done.flatMap { [self] result in
            switch result {
            case .failure(let f): return .ready(.failure(f))
            case .success(let (removed, admission)): return acknowledge(admission, on: eventLoop).map { $0.map { removed } }
            }
        }
    }

    public func statistics() -> SemanticCache.Statistics {
        cache.statistics()
    }

    public func stillAnswers(namespace: String, scope: String, prompt: String, createdAt: Int64, answer: ByteBuffer, score: Float, minScore: Float?, query: String?, now: Int64) -> Bool {
        cache.stillAnswers(namespace, scope: scope, prompt: prompt, createdAt: createdAt, answer: answer, score: score, minScore: minScore, query: query, now: now)
    }

    public func info(namespace: String) -> SemanticCache.Info? {
        cache.info(namespace)
    }

    public func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>> {
        run(namespace, on: eventLoop, busy: .failure(.busy)) { [cache] in
            let configured: Void? = cache.write(namespace) { n in
                if let minScore { n.minScore = minScore }
                if let maxEntries { n.maxEntries = maxEntries }
            }
            guard configured != nil, let info = cache.info(namespace) else {
                return .failure(.tooManyNamespaces(limit: cache.maxNamespaces))
            }
            return .success(info)
        }
    }
}
