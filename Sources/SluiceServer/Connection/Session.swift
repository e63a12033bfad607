/// Per-connection state that commands may change. A class so that handing it to a command
/// costs no copy; only its connection's event loop touches it.
public final class Session {
    public let id: Int
    public var authenticated: Bool
    public var name: String?
    public var libraryName: String?
    public var libraryVersion: String?
    /// Failed AUTH attempts on this connection.
    public var authFailures = 0
    /// Monotonic ms before which the next failed AUTH is not answered (failures queue up).
    public var authReplyNotBefore: Int64 = 0

    /// LLM.GET answers served straight from L1 by this connection and not yet added to
    /// ``LLMCounters/l1Hits``: the hottest hit is tallied here, without an atomic (a cache line
    /// every event loop would otherwise write), and reported once per read batch as
    /// `commands_processed` is. Unchecked exclusivity: only this connection's loop touches it,
    /// and never while another access is open.
    @exclusivity(unchecked) public var llmL1Hits = 0

    /// Adds what this connection tallied to the shared counters (once per read batch, and
    /// before STATS / INFO answer, so that a pipeline sees its own hits).
    public func reportTallies(to counters: LLMCounters) {
        if llmL1Hits > 0 {
            counters.l1Hits.add(llmL1Hits, ordering: .relaxed)
            llmL1Hits = 0
        }
    }

    /// Between MULTI and EXEC / DISCARD: the queued commands.
    public var transaction: TransactionQueue?

    /// Run when the client goes away (a waiting RL.ACQUIRE leaving its queue), by key; each
    /// is removed when its reply is written. At most one per reply pending.
    var closeHooks: [UInt64: @Sendable () -> Void] = [:]
    /// The client has gone, or sent all it will (half-close), or the server is shutting down.
    public private(set) var leaving = false

    /// Runs `hook` when the client goes away — at once if it already has.
    public func onClose(_ id: UInt64, _ hook: @escaping @Sendable () -> Void) {
        if leaving { hook() } else { closeHooks[id] = hook }
    }

    public func removeCloseHook(_ id: UInt64) { closeHooks[id] = nil }

    /// The client went away (closed, half-closed, or the server is stopping): runs what waited
    /// for that. As Redis frees a blocked client on EOF, a waiting RL.ACQUIRE is answered
    /// "not granted" rather than held until its wait ends.
    func closed() {
        leaving = true
        let hooks = closeHooks
        closeHooks = [:]
        for hook in hooks.values { hook() }
    }

    public init(id: Int, authenticated: Bool) {
        self.id = id
        self.authenticated = authenticated
    }
}
