/// Concurrency slots of one key (`RL.ACQUIRE` / `RL.RELEASE`) with a priority queue of waiters.
///
/// At most `limit` slots are held at once; each is a lease that ends by itself (a crashed
/// holder cannot keep capacity). A request that finds every slot taken may wait in the queue:
/// higher priority first, first come first served within a priority, and with *aging* — a waiter
/// gains one priority level per ``agingInterval`` waited — so a low priority is never starved
/// for ever. A waiter leaves the queue when granted, when its wait ends, or when cancelled
/// (its client went away).
///
/// A plain value with no clock: every transition takes `now` (monotonic ms) and returns the
/// grants it made, which the caller delivers. The caller also asks ``nextWakeUp`` when to call
/// ``tick(now:)`` (a wait ending, or a lease ending while someone waits).
public struct SlotQueue: Sendable, Hashable {
    /// A request waiting for a slot. Its slot id is chosen when it queues, and is the one it
    /// gets when granted.
    public struct Waiter: Sendable, Hashable {
        public var id: UInt64
        public var priority: Int
        /// Arrival order: ties in effective priority go to the earlier.
        var arrival: UInt64
        public var queuedAt: Int64
        /// When the wait ends (monotonic ms).
        public var deadline: Int64
        /// How long the slot is held once granted.
        public var lease: Int64
    }

    /// A slot given to a waiter: deliver it to whoever waits under `waiter`.
    public struct Grant: Sendable, Hashable {
        public var waiter: UInt64
        public var expiresAt: Int64
        /// Ms the waiter waited.
        public var waited: Int64

        public init(waiter: UInt64, expiresAt: Int64, waited: Int64) {
            self.waiter = waiter
            self.expiresAt = expiresAt
            self.waited = waited
        }
    }

    /// What an acquire did.
    public enum Outcome: Sendable, Hashable {
        /// A slot, now: its lease ends at `expiresAt`.
        case granted(expiresAt: Int64)
        /// Queued: `position` (1 = next) and an estimate of the wait in ms.
        case queued(position: Int, estimatedWait: Int64)
        /// No slot and no wait asked for (or the wait could not be queued): a retry after
        /// `retryAfter` ms may find one.
        case refused(position: Int, retryAfter: Int64)
    }

    /// Slot id → when its lease ends.
    public private(set) var holders: [UInt64: Int64] = [:]
    /// Waiters in arrival order (the best is found by a scan: queues are short, and aging
    /// changes the order as time passes anyway).
    public private(set) var waiters: [Waiter] = []
    /// The most recent `limit` asked for (a key's requests may disagree; the latest wins).
    public internal(set) var limit = 1
    public let agingInterval: Int64
    public let maxWaiters: Int
    var nextArrival: UInt64 = 0
    /// Mean ms a slot is held until released (exponentially weighted), for wait estimates;
    /// 0 until a release is seen.
    var meanHold: Int64 = 0

    public init(agingInterval: Int64 = 1_000, maxWaiters: Int = 10_000) {
        self.agingInterval = max(agingInterval, 1)
        self.maxWaiters = max(maxWaiters, 0)
    }

    public var isIdle: Bool { holders.isEmpty && waiters.isEmpty }

    /// The waiter's priority with aging: one level more per ``agingInterval`` waited.
    func effectivePriority(_ w: Waiter, now: Int64) -> Int {
        let aged = max(now &- w.queuedAt, 0) / agingInterval
        let (sum, overflow) = w.priority.addingReportingOverflow(Int(clamping: aged))
        return overflow ? .max : sum
    }

    /// Whether `a` goes before `b` at `now`.
    func precedes(_ a: Waiter, _ b: Waiter, now: Int64) -> Bool {
        let pa = effectivePriority(a, now: now), pb = effectivePriority(b, now: now)
        return pa != pb ? pa > pb : a.arrival < b.arrival
    }

    /// 1-based place of the waiter `id` in the order at `now`; nil when not waiting.
    public func position(of id: UInt64, now: Int64) -> Int? {
        guard let w = waiters.first(where: { $0.id == id }) else { return nil }
        return 1 + waiters.count { $0.id != id && precedes($0, w, now: now) }
    }

    /// Asks for a slot with id `slot`, at `priority`, waiting up to `wait` ms (0: not at all),
    /// held for `lease` ms once granted. Ends leases past `now` first, and grants freed slots
    /// to earlier waiters before this request (returned with the outcome).
    public mutating func acquire(slot: UInt64, limit: Int, priority: Int, wait: Int64, lease: Int64,
                                 now: Int64) -> (Outcome, [Grant]) {
        self.limit = max(limit, 1)
        var grants = tick(now: now).grants
        if waiters.isEmpty && holders.count < self.limit {
            let expiresAt = now.addingSaturating(lease)
            holders[slot] = expiresAt
            grantedLease[slot] = lease
            return (.granted(expiresAt: expiresAt), grants)
        }
        let me = Waiter(id: slot, priority: priority, arrival: nextArrival, queuedAt: now,
                        deadline: now.addingSaturating(wait), lease: lease)
        let ahead = waiters.count { precedes($0, me, now: now) }
        guard wait > 0, waiters.count < maxWaiters else {
            return (.refused(position: ahead + 1, retryAfter: estimatedWait(position: ahead + 1, now: now)), grants)
        }
        nextArrival &+= 1
        waiters.append(me)
        // A wait estimate counts the waiters ahead of this one as they stand now.
        grants += fill(now: now)  // nothing, unless `limit` was raised
        if let granted = grants.first(where: { $0.waiter == slot }) {
            return (.granted(expiresAt: granted.expiresAt), grants.filter { $0.waiter != slot })
        }
        return (.queued(position: ahead + 1, estimatedWait: estimatedWait(position: ahead + 1, now: now)), grants)
    }

    /// Frees `slot`. `released`: it was held and its lease had not ended. Its place goes to the
    /// best waiter at once.
    public mutating func release(_ slot: UInt64, now: Int64) -> (released: Bool, grants: [Grant]) {
        guard let expiresAt = holders.removeValue(forKey: slot) else { return (false, tick(now: now).grants) }
        if expiresAt > now, let lease = grantedLease[slot] {
            let held = max(lease - (expiresAt - now), 0)
            meanHold = meanHold == 0 ? held : (meanHold * 7 + held) / 8
        }
        grantedLease[slot] = nil
        var grants = tick(now: now).grants
        grants += fill(now: now)
        return (expiresAt > now, grants)
    }

    /// Lease length of each held slot (for the mean hold time).
    var grantedLease: [UInt64: Int64] = [:]

    /// Takes waiter `id` out of the queue (its client left). true: it was waiting.
    public mutating func cancel(_ id: UInt64) -> Bool {
        guard let i = waiters.firstIndex(where: { $0.id == id }) else { return false }
        waiters.remove(at: i)
        return true
    }

    /// Ends leases and waits that are over at `now`, and grants the freed slots.
    public mutating func tick(now: Int64) -> (grants: [Grant], timedOut: [UInt64]) {
        var ended: [UInt64] = []
        for (slot, expiresAt) in holders where expiresAt <= now { ended.append(slot) }
        for slot in ended {
            holders[slot] = nil
            grantedLease[slot] = nil
        }
        var timedOut: [UInt64] = []
        waiters.removeAll { w in
            guard w.deadline <= now else { return false }
            timedOut.append(w.id)
            return true
        }
        return (fill(now: now), timedOut)
    }

    /// Grants free slots to the best waiters.
    mutating func fill(now: Int64) -> [Grant] {
        var grants: [Grant] = []
        while holders.count < limit, !waiters.isEmpty {
            var best = 0
            for i in 1..<waiters.count where precedes(waiters[i], waiters[best], now: now) { best = i }
            let w = waiters.remove(at: best)
            let expiresAt = now.addingSaturating(w.lease)
            holders[w.id] = expiresAt
            grantedLease[w.id] = w.lease
            grants.append(Grant(waiter: w.id, expiresAt: expiresAt, waited: max(now - w.queuedAt, 0)))
        }
        return grants
    }

    /// When ``tick(now:)`` has something to do: the first wait to end, or — while someone
    /// waits — the first lease to end. nil: nothing scheduled.
    public var nextWakeUp: Int64? {
        guard !waiters.isEmpty else { return nil }
        let firstDeadline = waiters.map(\.deadline).min()!
        let firstLeaseEnd = holders.values.min() ?? .max
        return min(firstDeadline, firstLeaseEnd)
    }

    /// A guess at the wait of the `position`-th waiter: slots free at the mean hold time once
    /// releases have been seen, else as leases end; `limit` at a time.
    func estimatedWait(position: Int, now: Int64) -> Int64 {
        let rounds = Int64((position + limit - 1) / limit)
        if meanHold > 0 { return meanHold.multipliedSaturating(by: rounds) }
        let ends = holders.values.sorted()
        guard !ends.isEmpty else { return 0 }
        let i = min(position - 1, ends.count - 1)
        return max(ends[i] - now, 0)
    }

    /// Slots held and waiters, for the shard's bound.
    public var entries: Int { holders.count + waiters.count }
}
