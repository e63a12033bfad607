import NIOCore
import SluiceDomain

/// The RL.ACQUIREs of this instance waiting in shared slot queues (``RedisSlots``), by ticket
/// and by key, so that a key's timer or notice looks at that key's waiters only. Tickets
/// answered as granted by a cancel or a status check are remembered for a while (a bounded
/// FIFO): the published grant may still arrive and must not be taken for an orphan.
struct SlotWaiters {
    struct Waiting {
        let promise: EventLoopPromise<Result<SlotDecision, LimitError>>
        let key: ByteBuffer
        /// When its wait ends (this process's monotonic ms).
        let deadline: Int64
        let eventLoop: any EventLoop
        var position = 0
        var estimate: Int64 = 0
        /// Its end (a cancel in the script) is on its way: not ended twice, not counted as a
        /// deadline to wake for.
        var ending = false
    }

    private(set) var byTicket: [UInt64: Waiting] = [:]
    private var byKey: [ByteBuffer: Set<UInt64>] = [:]
    private var recentlyGranted = Set<UInt64>()
    private var recentOrder: [UInt64] = []
    private var recentHead = 0
    static let recentCapacity = 4_096

    var count: Int { byTicket.count }

    mutating func insert(_ ticket: UInt64, _ w: Waiting) {
        byTicket[ticket] = w
        byKey[w.key, default: []].insert(ticket)
    }

    mutating func remove(_ ticket: UInt64) -> Waiting? {
        guard let w = byTicket.removeValue(forKey: ticket) else { return nil }
        if var tickets = byKey.removeValue(forKey: w.key) {
            tickets.remove(ticket)
            if !tickets.isEmpty { byKey[w.key] = tickets }
        }
        return w
    }

    mutating func removeAll() -> [Waiting] {
        let all = Array(byTicket.values)
        byTicket = [:]
        byKey = [:]
        return all
    }

    mutating func update(_ ticket: UInt64, _ change: (inout Waiting) -> Void) {
        guard var w = byTicket[ticket] else { return }
        change(&w)
        byTicket[ticket] = w
    }

    func tickets(of key: ByteBuffer) -> Set<UInt64> { byKey[key] ?? [] }

    /// The first deadline among the key's waiters not already ending, and an event loop of one.
    func firstDeadline(of key: ByteBuffer) -> (Int64, any EventLoop)? {
        var best: (Int64, any EventLoop)?
        for t in tickets(of: key) {
            guard let w = byTicket[t], !w.ending else { continue }
            if best == nil || w.deadline < best!.0 { best = (w.deadline, w.eventLoop) }
        }
        return best
    }

    /// The key's waiters whose wait is over at `now` and not already ending; marks them ending.
    mutating func takeOver(of key: ByteBuffer, now: Int64) -> [UInt64] {
        var over: [UInt64] = []
        for t in tickets(of: key) where byTicket[t].map({ !$0.ending && $0.deadline <= now }) ?? false {
            byTicket[t]!.ending = true
            over.append(t)
        }
        return over
    }

    mutating func rememberGranted(_ ticket: UInt64) {
        guard recentlyGranted.insert(ticket).inserted else { return }
        if recentOrder.count < Self.recentCapacity {
            recentOrder.append(ticket)
        } else {
            recentlyGranted.remove(recentOrder[recentHead])
            recentOrder[recentHead] = ticket
            recentHead = (recentHead + 1) % Self.recentCapacity
        }
    }

    func wasGranted(_ ticket: UInt64) -> Bool { recentlyGranted.contains(ticket) }
}
