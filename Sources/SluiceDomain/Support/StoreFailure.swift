/// Why a write could not be made durable in the store that shares it (shared mode's Redis): the
/// client is told, so that nothing answered `+OK` is lost.
public enum StoreFailure: Error, Sendable, Hashable {
    /// The store cannot be reached (down, restarting, too slow): try again later.
    case unavailable(String)
    /// The store answered with an error (out of memory, read-only replica after a failover ...).
    case refused(String)
}
