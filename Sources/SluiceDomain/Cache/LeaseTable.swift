/// Stampede protection: on a miss, one caller at a time holds a lease on a key ("you compute
/// it"); the others are told to wait. A lease ends when its holder stores the value, when the
/// key is deleted, or when it runs out.
public struct LeaseTable: Sendable {
    public struct Lease: Sendable, Hashable {
        public var token: UInt64
        public var expiresAt: Int64
    }

    var leases: [UInt64: Lease] = [:]
    /// At most this many live leases (per shard). Past it a miss still gets a token but the
    /// lease is not recorded: the caller computes as if it held one and its write is admitted,
    /// only the others are not told to wait — stampede protection degrades, memory does not grow.
    public let maxLeases: Int

    public init(maxLeases: Int = 65_536) {
        self.maxLeases = max(maxLeases, 1)
    }

    public var count: Int { leases.count }

    /// The live lease on a key, if any.
    public func holder(of hash: UInt64, now: Int64) -> Lease? {
        guard let lease = leases[hash], lease.expiresAt > now else { return nil }
        return lease
    }

    /// Grants `token` for `duration` ms unless another live lease exists. true: granted.
    public mutating func acquire(_ hash: UInt64, token: UInt64, now: Int64, duration: Int64) -> Bool {
        if holder(of: hash, now: now) != nil { return false }
        if leases.count >= maxLeases && leases[hash] == nil { return true }  // granted, untracked (see maxLeases)
        leases[hash] = Lease(token: token, expiresAt: now.addingSaturating(duration))
        return true
    }

    /// May a write carrying `token` go ahead? Only a live lease held by someone else refuses it:
    /// a holder whose lease ran out while it computed still gets to store its answer.
    public func admits(_ hash: UInt64, token: UInt64, now: Int64) -> Bool {
        guard let lease = holder(of: hash, now: now) else { return true }
        return lease.token == token
    }

    public mutating func end(_ hash: UInt64) {
        leases[hash] = nil
    }

    public mutating func sweep(now: Int64) {
        leases = leases.filter { $0.value.expiresAt > now }
    }
}
