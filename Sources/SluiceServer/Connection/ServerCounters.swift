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
    /// Connections closed because replies held for all clients passed `--maxmemory-clients`.
    public let clientMemoryEvictions = Atomic<Int>(0)
    /// Replies held for all clients together, and their bound.
    public let clientOutput: ClientOutputMemory
    /// Failed AUTH / HELLO AUTH attempts.
    public let authFailures = Atomic<Int>(0)
    /// Monotonic second of the last "failed AUTH" log line (one per second at most).
    public let authLoggedSecond = Atomic<Int64>(-1)
    /// ... and of the last "client disconnected" line for an output limit.
    public let outputLimitLoggedSecond = Atomic<Int64>(-1)
    let nextClientID = Atomic<Int>(1)
    /// LLM.GET / LLM.SET.
    public let llm = LLMCounters()
    /// Free bytes in the allocator's arenas when housekeeping last looked, and how many times
    /// it gave them back to the system (``HousekeepingService``).
    public let allocatorFreeBytes = Atomic<Int>(0)
    public let allocatorReleases = Atomic<Int>(0)

    /// `clientOutputLimit`: `--maxmemory-clients` (0: counted, no limit).
    public init(clientOutputLimit: Int = 0) {
        clientOutput = ClientOutputMemory(limit: clientOutputLimit)
    }

    /// Whether `second` is the first to claim its log line in `last` (one line a second at
    /// most, server-wide, however many connections race for it).
    static func firstThisSecond(_ last: borrowing Atomic<Int64>, _ second: Int64) -> Bool {
        let seen = last.load(ordering: .relaxed)
        return second > seen && last.compareExchange(expected: seen, desired: second, ordering: .relaxed).exchanged
    }

    func newClientID() -> Int {
        nextClientID.add(1, ordering: .relaxed).oldValue
    }
}
