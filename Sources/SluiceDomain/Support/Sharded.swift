import NIOConcurrencyHelpers

/// State split into lock-protected shards picked by a 64-bit hash, so that threads working on
/// different keys rarely wait for each other. Locks are held only for in-memory work.
public final class Sharded<State: Sendable>: Sendable {
    @usableFromInline
    final class Shard: Sendable {
        @usableFromInline let state: Locked<State>
        init(_ state: State) { self.state = Locked(state) }
    }

    @usableFromInline let shards: [Shard]
    @usableFromInline let mask: UInt64

    /// `count` is rounded up to a power of two.
    public init(count: Int, _ make: (Int) -> State) {
        var n = 1
        while n < max(count, 1) { n <<= 1 }
        shards = (0..<n).map { Shard(make($0)) }
        mask = UInt64(n - 1)
    }

    public var count: Int { shards.count }

    /// The shard a hash belongs to (the high bits; maps inside shards use the whole hash).
    @inlinable
    public func index(for hash: UInt64) -> Int { indexImpl(hash) }

    @usableFromInline
    func indexImpl(_ hash: UInt64) -> Int { Int((hash >> 40) & mask) }

    /// Runs `body` on the hash's shard under its lock.
    @inlinable
    public func withShard<R>(hash: UInt64, _ body: (inout State) -> R) -> R {
        withShard(at: index(for: hash), body)
    }

    /// Inlinable so that callers get it specialised: a generic call looked up the shard type's
    /// metadata at run time on every request.
    @inlinable
    public func withShard<R>(at index: Int, _ body: (inout State) -> R) -> R {
        shards[index & Int(mask)].state.withLockedValue { body(&$0) }
    }

    public func forEach(_ body: (inout State) -> Void) {
        for shard in shards { shard.state.withLock { body(&$0) } }
    }
}
