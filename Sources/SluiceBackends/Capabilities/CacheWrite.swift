import SluiceDomain

/// What became of a write to the exact cache.
public enum CacheWrite: Sendable, Hashable {
    case stored
    /// NX / XX refused it.
    case notStored
    /// Another caller holds the lease on this key.
    case leaseRefused
    /// Shared mode: Redis did not store it (the local copy is dropped too).
    case failed(StoreFailure)
}
