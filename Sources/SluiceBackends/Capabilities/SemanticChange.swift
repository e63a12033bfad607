import NIOCore
import SluiceDomain

/// A change to the semantic entries: written to SQLite (embedded mode) or to the Redis stream
/// that every instance follows (shared mode), and applied again from there at start-up.
public enum SemanticChange: Sendable {
    case set(namespace: String, scope: String, prompt: String, response: ByteBuffer, embedder: String, vector: [Float],
             createdAt: Int64, expiresAt: Int64)
    case delete(namespace: String, scope: String, prompt: String)
    case drop(namespace: String)

    public init(_ write: SemanticWrite) {
        self = .set(namespace: write.namespace, scope: write.scope, prompt: write.prompt, response: write.response,
                    embedder: write.embedder, vector: write.vector, createdAt: write.createdAt, expiresAt: write.expiresAt)
    }

    /// Applies the change to an in-memory index (a replay: a change applied twice is harmless).
    public func apply(to cache: SemanticCache) {
        switch self {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt):
            _ = cache.write(ns) {
                $0.set(prompt, response: response, vector: vector, embedder: embedder, scope: scope, createdAt: createdAt, expiresAt: expiresAt)
            }
        case .delete(let ns, let scope, let prompt):
            _ = cache.write(ns, create: false) { $0.delete(prompt, scope: scope) }
        case .drop(let ns):
            _ = cache.drop(ns)
        }
    }
}
