import Synchronization

/// Replies held for all clients together, bounded (`--maxmemory-clients`, as Redis 7's): the
/// bound per-client limits cannot give. A thousand clients that each pipeline GETs of a 3 MB
/// value and never read leave 3 MB or more each in the server — 3 GB and more — though none of
/// them passes its own 64 MiB limit.
///
/// Each connection reports what it holds (replies queued behind slower ones and bytes its socket
/// has not taken): at each flush, when a write it made while counting has gone to the socket
/// (so it is counted down as it drains), when the socket's writability changes, every second
/// while it counts anything (a client that stopped reading makes none of the other events),
/// and when it closes. Only what lies above ``floor`` counts: small replies in flight cost
/// nothing to account. Over the limit, a connection that holds at least the mean of those
/// holding anything, and has held something for a second or more, is told to go at its next
/// report — so the largest lasting holders go first, within a second or two, as Redis evicts the
/// clients using the most memory, and a client that reads its replies (holding a large one for
/// milliseconds) stays. Answers that arrived before an earlier one count with the queued replies (the
/// state machine writes them out on arrival).
///
/// `total` and `holders` are two atomics, read apart: another loop may see them a step out of
/// step, which moves the mean by one connection's share for an instant — never the books.
public final class ClientOutputMemory: Sendable {
    /// Bytes above every connection's floor, all connections together (0: counted, no limit).
    public let limit: Int
    /// What each connection may hold uncounted.
    public static let floor = 64 * 1024
    let total = Atomic<Int>(0)
    /// Connections counting anything.
    let holders = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    /// Bytes counted now, all connections together.
    public var counted: Int { total.load(ordering: .relaxed) }

    /// How long a connection must have been counting before it may be told to go: a client
    /// that reads its replies holds a large one for milliseconds, one that does not for good.
    public static let minimumHoldMilliseconds: Int64 = 1000

    /// One connection's report: it holds `holding` bytes now; `accounted` is what it counted
    /// before, and is updated. Returns true when it should be disconnected (only when
    /// `mayGo`: it has been counting for ``minimumHoldMilliseconds``).
    public func report(_ accounted: inout Int, holding: Int, mayGo: Bool = true) -> Bool {
        let counted = max(holding, Self.floor) - Self.floor
        let change = counted - accounted
        if change != 0 {
            if accounted == 0 { holders.add(1, ordering: .relaxed) } else if counted == 0 { holders.subtract(1, ordering: .relaxed) }
            total.add(change, ordering: .relaxed)
            accounted = counted
        }
        guard counted > 0, limit > 0, mayGo else { return false }
        let all = total.load(ordering: .relaxed)
        guard all > limit else { return false }
        return counted >= all / max(holders.load(ordering: .relaxed), 1)
    }
}
