import Synchronization

/// Replies held for all clients together, bounded (`--maxmemory-clients`, as Redis 7's): the
/// bound per-client limits cannot give. A thousand clients that each pipeline GETs of a 3 MB
/// value and never read leave 3 MB or more each in the server — 3 GB and more — though none of
/// them passes its own 64 MiB limit.
///
/// Each connection reports what it holds (replies queued behind slower ones and bytes its socket
/// has not taken) when that changes: at each flush, when the socket's writability changes, and
/// when it closes. Only what lies above ``floor`` counts — the socket's high-water mark, past
/// which a writability change always tells — so that a connection that drained since its last
/// report is never counted for more than it holds. Over the limit, a connection that holds at
/// least the mean of those holding anything is told to go: the largest holders first, as Redis
/// evicts the clients using the most memory, and a client that reads its replies (holding
/// little) stays.
public final class ClientOutputMemory: Sendable {
    /// Bytes above every connection's floor, all connections together (0: counted, no limit).
    public let limit: Int
    /// What each connection may hold uncounted: NIO's default high-water mark.
    public static let floor = 64 * 1024
    let total = Atomic<Int>(0)
    /// Connections counting anything.
    let holders = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes counted now, all connections together.
    public var counted: Int { total.load(ordering: .relaxed) }

    /// One connection's report: it holds `holding` bytes now; `accounted` is what it counted
    /// before, and is updated. Returns true when it should be disconnected.
    public func report(_ accounted: inout Int, holding: Int) -> Bool {
        let counted = max(holding, Self.floor) - Self.floor
        let change = counted - accounted
        if change != 0 {
            if accounted == 0 { holders.add(1, ordering: .relaxed) } else if counted == 0 { holders.subtract(1, ordering: .relaxed) }
            total.add(change, ordering: .relaxed)
            accounted = counted
        }
        guard counted > 0, limit > 0 else { return false }
        let all = total.load(ordering: .relaxed)
        guard all > limit else { return false }
        return counted >= all / max(holders.load(ordering: .relaxed), 1)
    }
}
