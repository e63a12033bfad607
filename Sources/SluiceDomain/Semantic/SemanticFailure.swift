/// Why a semantic-cache request cannot be answered.
public enum SemanticFailure: Error, Sendable, Hashable {
    /// The namespace holds vectors of another embedder or dimension ("embedder/dimension").
    case embedderMismatch(namespace: String, request: String)
    /// A new namespace, and the cache already holds its limit.
    case tooManyNamespaces(limit: Int)
}
