import Foundation
import Logging
import NIOCore
import NIOPosix
import SluiceDomain
import SluiceProtocol

/// Redis Cluster for ``RedisClient``: the slot map (from `CLUSTER SLOTS`), one
/// ``RedisNodePool`` per master, each command sent to the master of its key's slot.
///
/// - `MOVED slot host:port`: the slot's new owner is noted at once, the command sent there
///   (up to five redirections), and the whole map refreshed soon after.
/// - `ASK slot host:port` (a slot migrating): `ASKING` and the command on one connection of that
///   node, the map unchanged.
/// - A node that cannot be reached fails its commands at once (the Redis-down policy decides
///   for the affected slots only) and makes the map be refreshed: after a failover the replica
///   that took over owns the slots, and commands go there.
/// - The map is also refreshed every second, so topology changes nobody ran into are seen.
/// - Multi-key `DEL`, `UNLINK` and `EXISTS` are sent one key each and their counts added: keys
///   of different slots must be, and keys of one slot that is migrating would get `TRYAGAIN`
///   (some keys moved, some not) where single-key commands follow `ASK`.
///
/// Which argument is the key is known from the command (Sluice sends a handful); commands
/// without one (`PUBLISH`, `PING`) go to any connected master.
final class ClusterRouter: Sendable {
    let seeds: [RedisEndpoint]
    let connectionsPerNode: Int
    let commandTimeout: Duration
    let logger: Logger
    let loop: any EventLoop

    struct State {
        /// Node address ("host:port") of each slot's master; "" when unassigned.
        var owners = [String](repeating: "", count: HashSlot.count)
        var pools: [String: RedisNodePool] = [:]
        var refreshing = false
        var lastRefresh: ContinuousClock.Instant?
        var refreshes = 0
        var redirections = 0
        var closed = false
        /// Replicas named by the replies of the refresh under way.
        var named: Set<String> = []
    }

    /// Seeds are always kept (the way back in when every mapped node is gone).
    var seedAddresses: Set<String> { Set(seeds.map(Self.address)) }

    let state = Locked(State())
    let task = Locked<RepeatedTask?>(nil)

    init(seeds: [RedisEndpoint], connectionsPerNode: Int, commandTimeout: Duration, logger: Logger,
         loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        self.seeds = seeds
        self.connectionsPerNode = connectionsPerNode
        self.commandTimeout = commandTimeout
        self.logger = logger
        self.loop = loop
        state.withLockedValue { s in
            for seed in seeds where s.pools[Self.address(seed)] == nil { s.pools[Self.address(seed)] = makePool(seed) }
        }
        // The first map as soon as a seed answers, then every second.
        task.withLockedValue { $0 = loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .seconds(1)) { [weak self] _ in
            self?.refresh()
        } }
    }

    static func address(_ e: RedisEndpoint) -> String { "\(e.host):\(e.port)" }

    func makePool(_ endpoint: RedisEndpoint) -> RedisNodePool {
        RedisNodePool(endpoint: endpoint, connections: connectionsPerNode, commandTimeout: commandTimeout, logger: logger)
    }

    /// A node's endpoint: the seeds' credentials and database, its host and port.
    func endpoint(host: String, port: Int) -> RedisEndpoint {
        var e = seeds[0]
        e.host = host
        e.port = port
        return e
    }

    // MARK: Routing

    func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        if let name = arguments.first, arguments.count > 2,
           name.isCommand("DEL") || name.isCommand("UNLINK") || name.isCommand("EXISTS") {
            return sendSplit(arguments, on: eventLoop)
        }
        return send(arguments, slot: Self.routingKey(arguments).map(HashSlot.of), redirections: 0, on: eventLoop)
    }

    /// The argument that names the key: the first after the command, or for EVAL/EVALSHA the
    /// first of the script's keys; nil for commands of no key.
    static func routingKey(_ arguments: [ByteBuffer]) -> ByteBuffer? {
        guard let name = arguments.first else { return nil }
        if name.isCommand("EVALSHA") || name.isCommand("EVAL") {
            guard arguments.count > 3, let n = Int(String(buffer: arguments[2])), n > 0 else { return nil }
            return arguments[3]
        }
        if name.isCommand("PUBLISH") || name.isCommand("PING") || name.isCommand("SCRIPT") || name.isCommand("INFO")
            || name.isCommand("CLUSTER") || name.isCommand("ASKING") {
            return nil
        }
        return arguments.count > 1 ? arguments[1] : nil
    }

    func pool(forSlot slot: Int?) -> RedisNodePool? {
        state.withLockedValue { s in
            if let slot, let p = s.pools[s.owners[slot]] { return p }
            // No key, or the slot's owner is not known yet: any connected node.
            return s.pools.values.first { $0.isConnected } ?? s.pools.values.first
        }
    }

    /// Waits between `TRYAGAIN` retries, ms.
    static let tryAgainDelays: [Int64] = [10, 20, 40, 80, 160, 320, 640]

    func send(_ arguments: [ByteBuffer], slot: Int?, redirections: Int, tryAgain: Int = 0, asking: RedisNodePool? = nil,
              direct: RedisNodePool? = nil, on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        guard let pool = asking ?? direct ?? pool(forSlot: slot) else {
            refresh()
            return eventLoop.makeFailedFuture(RedisError.unavailable("no Redis Cluster node known for slot \(slot ?? -1)"))
        }
        let sent = asking.map { $0.connection(for: eventLoop).sendAsking(arguments, on: eventLoop) } ?? pool.send(arguments, on: eventLoop)
        return sent.flatMapError { [self] error in
            // The node is unreachable: maybe failed over. Look again soon.
            refresh()
            return eventLoop.makeFailedFuture(error)
        }.flatMap { [self] reply in
            guard case .error(let message) = reply, redirections < 5 else { return eventLoop.makeSucceededFuture(reply) }
            if message.hasPrefix("MOVED "), let (s, host, port) = Self.redirection(message) {
                // Sent straight to the node named (a refresh finishing meanwhile must not send it
                // back where it came from); the map learns it too.
                let target = moved(slot: s, to: endpoint(host: host, port: port))
                return send(arguments, slot: s, redirections: redirections + 1, direct: target, on: eventLoop)
            }
            if message.hasPrefix("ASK "), let (s, host, port) = Self.redirection(message) {
                let target = node(endpoint(host: host, port: port))
                return send(arguments, slot: s, redirections: redirections + 1, asking: target, on: eventLoop)
            }
            if message.hasPrefix("TRYAGAIN"), tryAgain < Self.tryAgainDelays.count {
                // A multi-key command (a script on a bucket and a new reservation) while its slot
                // migrates: Redis asks to retry. A migration moves a slot in milliseconds; the
                // retries wait up to about 1.3 s before this counts as an outage (falling back
                // then could let a limit through twice).
                return eventLoop.scheduleTask(in: .milliseconds(Self.tryAgainDelays[tryAgain])) {}.futureResult.flatMap { [self] in
                    send(arguments, slot: slot, redirections: redirections, tryAgain: tryAgain + 1, on: eventLoop)
                }
            }
            if message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("TRYAGAIN") || message.hasPrefix("MASTERDOWN") {
                // Not an answer but an outage (a slot has no master yet, a resharding is under
                // way): the Redis-down policy decides, as for a node that cannot be reached.
                refresh()
                return eventLoop.makeFailedFuture(RedisError.unavailable(message))
            }
            return eventLoop.makeSucceededFuture(reply)
        }
    }

    /// `MOVED 3999 127.0.0.1:6381` → (3999, "127.0.0.1", 6381).
    static func redirection(_ message: String) -> (Int, String, Int)? {
        let parts = message.split(separator: " ")
        guard parts.count >= 3, let slot = Int(parts[1]), slot >= 0, slot < HashSlot.count,
              let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...]) else { return nil }
        return (slot, String(parts[2][..<colon]), port)
    }

    /// The pool of a node, made (under the lock: making one only starts its threads) when new.
    @discardableResult
    func node(_ endpoint: RedisEndpoint) -> RedisNodePool {
        let address = Self.address(endpoint)
        return state.withLockedValue { s in
            if let p = s.pools[address] { return p }
            let fresh = makePool(endpoint)
            s.pools[address] = fresh
            return fresh
        }
    }

    func moved(slot: Int, to endpoint: RedisEndpoint) -> RedisNodePool {
        let target = node(endpoint)
        state.withLockedValue { s in
            s.owners[slot] = Self.address(endpoint)
            s.redirections += 1
        }
        refresh()
        return target
    }

    /// DEL/UNLINK/EXISTS over several keys: one command per key (pipelined all the same), counts
    /// added. If one fails the whole reply is that failure — the other keys may have been
    /// deleted, as with any Redis Cluster client.
    func sendSplit(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let parts = arguments.dropFirst().map { key in send([arguments[0], key], slot: HashSlot.of(key), redirections: 0, on: eventLoop) }
        return EventLoopFuture.whenAllSucceed(parts, on: eventLoop).map { replies in
            var total = 0
            for r in replies {
                guard case .integer(let n) = r else { return r }  // an error: the caller sees it
                total += n
            }
            return .integer(total)
        }
    }

    // MARK: The slot map

    /// Asks a node (known ones first, then the seeds) for `CLUSTER SLOTS` and installs the map;
    /// at most one refresh at a time and one per 100 ms.
    func refresh() {
        let go = state.withLockedValue { s -> Bool in
            if s.refreshing || s.closed { return false }
            if let last = s.lastRefresh, ContinuousClock.now - last < .milliseconds(100) { return false }
            s.refreshing = true
            return true
        }
        guard go else { return }
        let candidates = state.withLockedValue { s in s.pools.values.filter(\.isConnected) + s.pools.values.filter { !$0.isConnected } }
        ask(candidates[...], best: nil)
    }

    typealias Ranges = [(Int, Int, String, Int)]

    /// Asks the candidates in turn. A map that leaves slots to a master this instance cannot
    /// reach may be one a node has not updated yet after a failover: the next node is asked
    /// too, and the map with the fewest such slots wins.
    func ask(_ candidates: ArraySlice<RedisNodePool>, best: (Ranges, Int)?) {
        guard let node = candidates.first else {
            if let best { return install(best.0) }
            state.withLockedValue { s in
                s.refreshing = false
                s.lastRefresh = ContinuousClock.now
            }
            return
        }
        node.send([ByteBuffer(string: "CLUSTER"), ByteBuffer(string: "SLOTS")], on: loop).whenComplete { [self] result in
            guard case .success(let reply) = result, var ranges = Self.slotRanges(reply), !ranges.isEmpty else {
                return ask(candidates.dropFirst(), best: best)
            }
            // An empty host means "the node you asked".
            ranges = ranges.map { r in (r.0, r.1, r.2.isEmpty ? node.endpoint.host : r.2, r.3) }
            replicas(in: reply, askedHost: node.endpoint.host)
            let unreachable = state.withLockedValue { s in
                ranges.reduce(0) { sum, r in
                    sum + (s.pools[Self.address(endpoint(host: r.2, port: r.3))]?.isConnected == true ? 0 : r.1 - r.0 + 1)
                }
            }
            if unreachable == 0 { return install(ranges) }
            let better = best.map { unreachable < $0.1 } ?? true
            ask(candidates.dropFirst(), best: better ? (ranges, unreachable) : best)
        }
    }

    /// `CLUSTER SLOTS` → [(first slot, last slot, master host, master port)].
    static func slotRanges(_ reply: RESPValue) -> [(Int, Int, String, Int)]? {
        guard case .array(let items?) = reply else { return nil }
        var ranges: [(Int, Int, String, Int)] = []
        for item in items {
            guard case .array(let r?) = item, r.count >= 3, case .integer(let first) = r[0], case .integer(let last) = r[1],
                  case .array(let master?) = r[2], master.count >= 2, let host = master[0].string, case .integer(let port) = master[1],
                  first >= 0, last < HashSlot.count, first <= last else { return nil }
            ranges.append((first, last, host, port))
        }
        return ranges
    }

    /// Replicas named in a `CLUSTER SLOTS` reply get pools too, so that one promoted in a
    /// failover is already connected when it takes over.
    func replicas(in reply: RESPValue, askedHost: String) {
        guard case .array(let items?) = reply else { return }
        for item in items {
            guard case .array(let r?) = item, r.count > 3 else { continue }
            for replica in r[3...] {
                guard case .array(let n?) = replica, n.count >= 2, let host = n[0].string, case .integer(let port) = n[1],
                      (1...65535).contains(port) else { continue }
                let e = endpoint(host: host.isEmpty ? askedHost : host, port: port)
                node(e)
                state.withLockedValue { _ = $0.named.insert(Self.address(e)) }
            }
        }
    }

    func install(_ ranges: Ranges) {
        var owners = [String](repeating: "", count: HashSlot.count)
        var masters: [String: RedisEndpoint] = [:]
        for (first, last, host, port) in ranges {
            let e = endpoint(host: host, port: port)
            let address = Self.address(e)
            masters[address] = e
            for slot in first...last { owners[slot] = address }
        }
        for (_, e) in masters { node(e) }
        let (changed, gone) = state.withLockedValue { s -> (Bool, [RedisNodePool]) in
            // Nodes learn of a failover at different moments: a node that has not yet may
            // still name the dead master. A slot is not moved from a master this instance
            // reaches to one it cannot reach (the next refresh, or a MOVED, settles it).
            for slot in 0..<HashSlot.count where owners[slot] != s.owners[slot] {
                let old = s.owners[slot]
                if !old.isEmpty, s.pools[old]?.isConnected == true, s.pools[owners[slot]]?.isConnected == false {
                    owners[slot] = old
                }
            }
            let changed = s.owners != owners
            s.owners = owners
            s.refreshing = false
            s.lastRefresh = ContinuousClock.now
            s.refreshes += 1
            // Nodes the cluster no longer names (removed, or a restarted pod's old address)
            // are dropped — a seed stays, as does a node named as a replica (made above).
            var gone: [RedisNodePool] = []
            if s.closed { return (changed, gone) }
            let keep = Set(owners.filter { !$0.isEmpty }).union(seedAddresses).union(s.named)
            for (address, pool) in s.pools where !keep.contains(address) {
                gone.append(pool)
                s.pools[address] = nil
            }
            s.named = []
            return (changed, gone)
        }
        // Closing waits for the pool's threads: not on an event loop.
        if !gone.isEmpty { Thread.detachNewThread { for p in gone { p.close() } } }
        if changed { logger.info("Redis Cluster slot map", metadata: ["masters": "\(masters.keys.sorted())"]) }
    }

    // MARK: Views

    /// Masters in the map, with their slot counts and connection state (`INFO redis`).
    struct NodeView: Sendable, Hashable {
        var address: String
        var slots: Int
        var connected: Bool
    }

    var nodes: [NodeView] {
        state.withLockedValue { s in
            var slots: [String: Int] = [:]
            for o in s.owners where !o.isEmpty { slots[o, default: 0] += 1 }
            return s.pools.map { NodeView(address: $0.key, slots: slots[$0.key] ?? 0, connected: $0.value.isConnected) }
                .sorted { $0.address < $1.address }
        }
    }

    var coveredSlots: Int { state.withLockedValue { s in s.owners.count { !$0.isEmpty } } }
    var refreshCount: Int { state.withLockedValue { $0.refreshes } }
    var redirectionCount: Int { state.withLockedValue { $0.redirections } }

    /// An endpoint for a dedicated session (pub/sub, stream tail): the owner of `key`'s slot,
    /// or for no key a master picked by `attempt` (so a reconnect tries the next one).
    func sessionEndpoint(forKey key: ByteBuffer?, attempt: Int) -> RedisEndpoint {
        state.withLockedValue { s in
            if let key, let p = s.pools[s.owners[HashSlot.of(key)]] { return p.endpoint }
            let masters = Set(s.owners.filter { !$0.isEmpty }).sorted()
            let choices = masters.isEmpty ? s.pools.keys.sorted() : masters
            guard !choices.isEmpty, let p = s.pools[choices[abs(attempt) % choices.count]] else { return seeds[0] }
            return p.endpoint
        }
    }

    /// Connected to at least one master (a replica given as a seed does not count).
    var isConnected: Bool {
        state.withLockedValue { s in
            let masters = Set(s.owners).subtracting([""])
            // Before the first map: any node.
            if masters.isEmpty { return s.pools.values.contains { $0.isConnected } }
            return masters.contains { s.pools[$0]?.isConnected == true }
        }
    }

    var counters: RedisConnection.Counters {
        state.withLockedValue { s in
            s.pools.values.reduce(into: RedisConnection.Counters()) { $0.add($1.counters) }
        }
    }

    /// The pools of the nodes that own slots, ordered by address.
    var masterPools: [RedisNodePool] {
        state.withLockedValue { s in Set(s.owners).subtracting([""]).sorted().compactMap { s.pools[$0] } }
    }

    /// Every node: SCRIPT LOAD goes to each master.
    var allPools: [RedisNodePool] { state.withLockedValue { Array($0.pools.values) } }

    func close() {
        task.withLockedValue { $0?.cancel() }
        let pools = state.withLockedValue { s -> [RedisNodePool] in
            s.closed = true
            return Array(s.pools.values)
        }
        for p in pools { p.close() }
    }
}

extension ByteBuffer {
    /// Whether this is the command `name` (ASCII, any case).
    func isCommand(_ name: String) -> Bool {
        guard readableBytes == name.utf8.count else { return false }
        return zip(readableBytesView, name.utf8).allSatisfy { $0 | 0x20 == $1 | 0x20 }
    }
}
