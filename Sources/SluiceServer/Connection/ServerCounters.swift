import Synchronization

/// Connection-level counters of the whole process, bumped once per read batch (not per
/// request) where they can be.
public final class ServerCounters: Sendable {
    public let connectedClients = Atomic<Int>(0)
    public let totalConnections = Atomic<Int>(0)
    public let commandsProcessed = Atomic<Int>(0)
    public let rejectedRequests = Atomic<Int>(0)
    public let protocolErrors = Atomic<Int>(0)
    let nextClientID = Atomic<Int>(1)

    public init() {}

    func newClientID() -> Int {
        nextClientID.add(1, ordering: .relaxed).oldValue
    }
}
