import NIOCore
import SluiceDomain

/// A change to the semantic entries: written to SQLite (embedded mode) or to the Redis stream
/// that every instance follows (shared mode), and applied again from there at start-up.
public enum SemanticChange: Sendable {
    case set(namespace: String, scope: String, prompt: String, response: ByteBuffer, embedder: String, vector: [Float],
             createdAt: Int64, expiresAt: Int64, worth: AnswerWorth = .none)
    case delete(namespace: String, scope: String, prompt: String)
    case drop(namespace: String)
    /// What `SEM.FEEDBACK` taught the entry for `prompt` in `scope` created at `createdAt`
    /// (joined into what the entry has; an entry they condemn is deleted).
    case verdicts(namespace: String, scope: String, prompt: String, createdAt: Int64, Verdicts)

    /// Roughly what it holds in memory (for the store's queue bound).
    var approximateBytes: Int {
        switch self {
        case .set(let ns, let scope, let prompt, let response, _, let vector, _, _, _):
            return ns.utf8.count + scope.utf8.count + prompt.utf8.count + response.readableBytes + vector.count * 4 + 96
        case .delete(let ns, let scope, let prompt):
            return ns.utf8.count + scope.utf8.count + prompt.utf8.count + 96
        case .drop(let ns):
            return ns.utf8.count + 96
        case .verdicts(let ns, let scope, let prompt, _, _):
            return ns.utf8.count + scope.utf8.count + prompt.utf8.count + 128
        }
    }

    /// The change a recorded verdict makes (a condemning one deletes that version of the entry).
    public init(_ feedback: SemanticCache.Feedback, namespace: String) {
        self = .verdicts(namespace: namespace, scope: feedback.scope, prompt: feedback.prompt, createdAt: feedback.createdAt, feedback.verdicts)
    }

    public init(_ write: SemanticWrite) {
        self = .set(namespace: write.namespace, scope: write.scope, prompt: write.prompt, response: write.response,
                    embedder: write.embedder, vector: write.vector, createdAt: write.createdAt, expiresAt: write.expiresAt, worth: write.worth)
    }

    /// Applies the change to an in-memory index (a replay: a change applied twice is harmless).
    /// Returns the changes that the bounds it met call for in turn (entries evicted for room).
    @discardableResult
    public func apply(to cache: SemanticCache) -> [SemanticChange] {
        switch self {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt, let worth):
            let evicted = (try? cache.set(ns, prompt: prompt, response: response, vector: vector, embedder: embedder, scope: scope,
                                          createdAt: createdAt, expiresAt: expiresAt, worth: worth).get()) ?? []
            return evicted.map { .delete(namespace: ns, scope: $0.scope, prompt: $0.prompt) }
        case .delete(let ns, let scope, let prompt):
            _ = cache.write(ns, create: false) { $0.delete(prompt, scope: scope) }
        case .drop(let ns):
            _ = cache.drop(ns)
        case .verdicts(let ns, let scope, let prompt, let createdAt, let verdicts):
            _ = cache.write(ns, create: false) { $0.mergeVerdicts(verdicts, prompt: prompt, scope: scope, createdAt: createdAt) }
        }
        return []
    }

    /// The namespace this change is about.
    public var namespace: String {
        switch self {
        case .set(let ns, _, _, _, _, _, _, _, _), .delete(let ns, _, _), .drop(let ns), .verdicts(let ns, _, _, _, _): ns
        }
    }

    /// Applies an entry's change to its namespace, which the caller holds under
    /// ``SemanticCache/replay`` (a drop is the cache's to apply: nothing happens here).
    public func apply(to namespace: inout SemanticNamespace, of cache: SemanticCache) {
        switch self {
        case .set(_, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt, let worth):
            _ = cache.store(in: &namespace, prompt: prompt, response: response, vector: vector, embedder: embedder, scope: scope,
                            createdAt: createdAt, expiresAt: expiresAt, worth: worth)
        case .delete(_, let scope, let prompt):
            _ = namespace.delete(prompt, scope: scope)
        case .verdicts(_, let scope, let prompt, let createdAt, let verdicts):
            _ = namespace.mergeVerdicts(verdicts, prompt: prompt, scope: scope, createdAt: createdAt)
        case .drop:
            break
        }
    }
}
