import NIOCore
import NIOPosix
import SluiceDomain

/// The semantic cache of one process: the in-memory index (``SemanticCache``), with every change
/// also queued for the SQLite file when there is one, so the entries survive a restart.
///
/// A search of a namespace larger than `offloadEntries` runs on `searchPool`, not on the event
/// loop: an exact scan of 100,000 vectors takes milliseconds, and the other connections of that
/// loop must not wait for it.
public final class EmbeddedSemanticStore: SemanticStore {
    public let cache: SemanticCache
    let store: SQLiteStore?
    let searchPool: NIOThreadPool
    let offloadEntries: Int

    public init(cache: SemanticCache, store: SQLiteStore?, searchPool: NIOThreadPool, offloadEntries: Int) {
        self.cache = cache
        self.store = store
        self.searchPool = searchPool
        self.offloadEntries = offloadEntries
    }

    public func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        let result = cache.write(entry.namespace) {
            $0.set(entry.prompt, response: entry.response, vector: entry.vector, embedder: entry.embedder, scope: entry.scope,
                   createdAt: entry.createdAt, expiresAt: entry.expiresAt)
        }
        guard let result else { return .ready(.failure(.tooManyNamespaces(limit: cache.maxNamespaces))) }
        if case .success = result { store?.enqueue(SemanticChange(entry)) }
        return .ready(result)
    }

    public func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>> {
        let cache = cache
        let search: @Sendable () -> Result<SemanticNamespace.Outcome, SemanticFailure> = {
            cache.get(query.namespace, prompt: query.prompt, vector: query.vector, embedder: query.embedder, scope: query.scope,
                      minScore: query.minScore, now: now)
        }
        if cache.count(query.namespace) > offloadEntries {
            return .later(searchPool.runIfActive(eventLoop: eventLoop, search))
        }
        return .ready(search())
    }

    public func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Result<Bool, SemanticFailure>> {
        let removed = cache.write(namespace, create: false) { $0.delete(prompt, scope: scope) } ?? false
        if removed { store?.enqueue(.delete(namespace: namespace, scope: scope, prompt: prompt)) }
        return .ready(.success(removed))
    }

    public func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Result<Int, SemanticFailure>> {
        let removed = cache.drop(namespace)
        store?.enqueue(.drop(namespace: namespace))
        return .ready(.success(removed))
    }

    public func info(namespace: String) -> SemanticCache.Info? {
        cache.info(namespace)
    }

    public func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>> {
        let configured: Void? = cache.write(namespace) { n in
            if let minScore { n.minScore = minScore }
            if let maxEntries { n.maxEntries = maxEntries }
        }
        guard configured != nil, let info = cache.info(namespace) else {
            return .ready(.failure(.tooManyNamespaces(limit: cache.maxNamespaces)))
        }
        return .ready(.success(info))
    }

    /// Whether `prompt` is stored in `scope` (the Redis-down fallback asks before a delete).
    public func contains(namespace: String, prompt: String, scope: String) -> Bool {
        cache.read(namespace) { $0.contains(prompt, scope: scope) } ?? false
    }
}
