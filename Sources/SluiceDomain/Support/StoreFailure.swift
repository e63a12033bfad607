/// Why a write could not be made durable — in the store that shares it (shared mode's Redis)
/// or in the embedded data file: the client is told, so that nothing answered `+OK` is lost.
public enum StoreFailure: Error, Sendable, Hashable {
    /// Redis cannot be reached (down, restarting): the write was not sent, try again later.
    case unavailable(String)
    /// The write was sent but Redis did not confirm it in time (slow, or the connection broke
    /// while it was in flight): it may or may not have been stored.
    case unconfirmed(String)
    /// Redis answered with an error (out of memory, read-only replica after a failover ...).
    case refused(String)
    /// The embedded data file cannot be written (disk full, read-only): writes are refused
    /// until it can, as Redis does with MISCONF.
    case notPersisted(String)
    /// The embedded data file's write queue is past its hard bound (a disk far slower than the
    /// writes, or clients that queue writes without waiting for their acknowledgements):
    /// nothing was stored, try again later.
    case queueFull(String)
}

extension StoreFailure {
    /// What the store said, whatever the kind of failure.
    public var reason: String {
        switch self {
        case .unavailable(let reason), .unconfirmed(let reason), .refused(let reason), .notPersisted(let reason), .queueFull(let reason):
            return reason
        }
    }
}
