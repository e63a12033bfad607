/// Why a semantic-cache request cannot be answered.
public enum SemanticFailure: Error, Sendable, Hashable {
    /// The namespace holds vectors of another embedder or dimension ("embedder/dimension").
    case embedderMismatch(namespace: String, request: String)
    /// A new namespace, and the cache already holds its limit.
    case tooManyNamespaces(limit: Int)
    /// Shared mode: the change could not be shared (Redis unreachable or refusing); not kept.
    case store(StoreFailure)
}
