/// Why a semantic-cache request cannot be answered.
public enum SemanticFailure: Error, Sendable, Hashable {
    /// The namespace holds vectors of another embedder or dimension ("embedder/dimension").
    case embedderMismatch(namespace: String, request: String)
    /// A new namespace, and the cache already holds its limit.
    case tooManyNamespaces(limit: Int)
    /// The cache holds its limit of entries and this namespace has none to give up.
    case full(limit: Int)
    /// The vector's length overflows or underflows float32: it has no direction to store.
    case unusableVector
    /// Too many searches are waiting for a thread.
    case busy
    /// Shared mode: the change could not be shared (Redis unreachable or refusing); not kept.
    case store(StoreFailure)
}
