import NIOCore

/// A change to the semantic entries: written to SQLite (embedded mode) or to the Redis stream
/// that every instance follows (shared mode).
public enum SemanticChange: Sendable {
    case set(namespace: String, scope: String, prompt: String, response: ByteBuffer, embedder: String, vector: [Float],
             createdAt: Int64, expiresAt: Int64)
    case delete(namespace: String, scope: String, prompt: String)
    case drop(namespace: String)
}

