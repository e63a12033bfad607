import Synchronization

/// Connection-level counters of the whole process, bumped once per read batch (not per
/// request) where they can be.
public final class ServerCounters: Sendable {
    public let connectedClients = Atomic<Int>(0)
    public let totalConnections = Atomic<Int>(0)
    public let commandsProcessed = Atomic<Int>(0)
    public let rejectedRequests = Atomic<Int>(0)
    public let protocolErrors = Atomic<Int>(0)
    /// Connections refused at `--maxclients`.
    public let rejectedConnections = Atomic<Int>(0)
    /// Connections closed by `--timeout`.
    public let idleDisconnects = Atomic<Int>(0)
    /// Connections closed by the client output buffer limits.
    public let outputLimitDisconnects = Atomic<Int>(0)
    /// Failed AUTH / HELLO AUTH attempts.
    public let authFailures = Atomic<Int>(0)
    /// Monotonic second of the last "failed AUTH" log line (one per second at most).
    public let authLoggedSecond = Atomic<Int64>(-1)
    let nextClientID = Atomic<Int>(1)
    /// LLM.GET / LLM.SET.
    public let llm = LLMCounters()

    public init() {}

    func newClientID() -> Int {
        nextClientID.add(1, ordering: .relaxed).oldValue
    }
}
