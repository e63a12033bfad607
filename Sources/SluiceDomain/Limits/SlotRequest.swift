/// One `RL.ACQUIRE`: a slot of at most `limit` held at once, asked at `priority`, waiting up to
/// `wait` ms in the key's queue (0: answer at once), held for `lease` ms once granted.
/// `ticket` names the request — and its slot, when granted — so a client that goes away can
/// take its wait out of the queue.
public struct SlotRequest: Sendable, Hashable {
    public var limit: Int
    public var priority: Int
    public var wait: Int64
    public var lease: Int64
    public var ticket: UInt64

    public init(limit: Int, priority: Int = 0, wait: Int64 = 0, lease: Int64, ticket: UInt64 = RandomID.next()) {
        self.limit = limit
        self.priority = priority
        self.wait = wait
        self.lease = lease
        self.ticket = ticket
    }
}
