import NIOCore
import SluiceDomain
import SluiceProtocol

/// Calls of `Lua/slot_queue.lua` (the shared mode's ``SlotQueue``) and their replies.
public struct SlotScript: Sendable {
    public enum Operation: String, Sendable {
        case acquire, release, tick, cancel, status
    }

    /// What one call returned (see the script's header).
    public struct Reply: Sendable, Hashable {
        public var kind: Int64
        public var a: Int64
        public var b: Int64
        /// Ms from now until the queue next needs a tick (``SlotQueue/nextWakeUp``); nil when
        /// nobody waits.
        public var wake: Int64?
        /// Ms from now until the first lease ends while someone waits: what an instance arms
        /// its timer for (it ends its own waiters' waits itself).
        public var leaseWake: Int64?
        public var grants: [SlotQueue.Grant]
        public var timedOut: [UInt64]
    }

    public let client: RedisClient
    public let clock: ScriptClock
    public let agingInterval: Int64
    public let maxWaiters: Int
    /// Undo a grant whose PUBLISH nobody heard (its instance is gone) — not in a Redis Cluster,
    /// where PUBLISH counts only the subscribers of the node the script runs on.
    public let undoUnheardGrants: Bool

    public init(client: RedisClient, clock: ScriptClock = .redis, agingInterval: Int64 = 1_000, maxWaiters: Int = 10_000) {
        self.client = client
        self.clock = clock
        self.agingInterval = agingInterval
        self.maxWaiters = maxWaiters
        undoUnheardGrants = !client.isCluster
    }

    /// The key's five Redis keys, `sluice:sl:{<hash>}:<key>:<part>`: one hash tag, so that they
    /// share a cluster slot. The tag is a hash of the key, not the key, because a key may hold
    /// `{` or `}` itself (a key starting with `}` would make an empty tag and scatter the five).
    static func keys(_ key: ByteBuffer) -> [ByteBuffer] {
        let tag = String(stableHash(key), radix: 16)
        return ["h", "w", "m", "l", "d"].map { part in
            var b = ByteBuffer(string: "sluice:sl:{\(tag)}:")
            b.writeImmutableBuffer(key)
            b.writeString(":" + part)
            return b
        }
    }

    /// FNV-1a: the same on every instance (the key hasher is seeded per process).
    static func stableHash(_ key: ByteBuffer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.readableBytesView {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    static func number<N: BinaryInteger>(_ n: N) -> ByteBuffer { ByteBuffer(string: String(n)) }

    /// `now` is used only with the caller's clock (tests); in production the script reads
    /// Redis's TIME.
    /// `channel`: the calling instance's grant channel ('' in tests): grants to its own waiters
    /// come back in the reply instead of through it.
    public func run(_ op: Operation, _ key: ByteBuffer, now: Int64, channel: String = "", _ arguments: [ByteBuffer],
                    on eventLoop: any EventLoop) -> EventLoopFuture<Reply> {
        let head = [ByteBuffer(string: op.rawValue), clock.argument(now), key, Self.number(agingInterval), Self.number(maxWaiters),
                    ByteBuffer(string: channel), ByteBuffer(string: undoUnheardGrants ? "1" : "0")]
        return LuaScripts.slotQueue.run(client, keys: Self.keys(key), arguments: head + arguments, on: eventLoop)
            .flatMapThrowing { try Self.reply($0) }
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, channel: String, now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Reply> {
        run(.acquire, key, now: now, channel: channel, [Self.number(request.ticket), Self.number(request.limit), Self.number(request.priority),
                                                        Self.number(request.wait), Self.number(request.lease)], on: eventLoop)
    }

    public func call(_ op: Operation, _ key: ByteBuffer, slot: UInt64, now: Int64, channel: String = "", on eventLoop: any EventLoop) -> EventLoopFuture<Reply> {
        run(op, key, now: now, channel: channel, [Self.number(slot)], on: eventLoop)
    }

    static func reply(_ value: RESPValue) throws -> Reply {
        guard case .array(let items?) = value, items.count >= 6 else { throw RedisError.unexpectedReply("slot_queue: \(value)") }
        func integer(_ i: Int) throws -> Int64 {
            guard i < items.count, case .integer(let n) = items[i] else { throw RedisError.unexpectedReply("slot_queue: \(value)") }
            return Int64(n)
        }
        func id(_ i: Int) throws -> UInt64 {
            guard i < items.count, case .bulkString(let b?) = items[i], let n = UInt64(String(buffer: b)) else {
                throw RedisError.unexpectedReply("slot_queue: \(value)")
            }
            return n
        }
        let wake = try integer(3), leaseWake = try integer(4), n = try integer(5)
        guard n >= 0, n <= items.count, 6 + 3 * Int(n) <= items.count else { throw RedisError.unexpectedReply("slot_queue: \(value)") }
        var grants: [SlotQueue.Grant] = []
        for g in 0..<Int(n) {
            let at = 6 + 3 * g
            grants.append(SlotQueue.Grant(waiter: try id(at), expiresAt: try integer(at + 1), waited: try integer(at + 2)))
        }
        let timedOut = try (6 + 3 * Int(n) ..< items.count).map(id)
        return Reply(kind: try integer(0), a: try integer(1), b: try integer(2), wake: wake < 0 ? nil : wake,
                     leaseWake: leaseWake < 0 ? nil : leaseWake, grants: grants, timedOut: timedOut)
    }
}
