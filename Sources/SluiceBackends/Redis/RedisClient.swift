import CHiredis
import Logging
import NIOCore
import SluiceProtocol

/// Where shared mode sends its Redis commands: one Redis (a few pipelined connections, one per
/// event loop), or a Redis Cluster (``ClusterRouter``: each command to the master of its key's
/// slot, redirections followed, the slot map kept fresh). Everything above sends through this
/// and never asks which it is; keys that must be together are named with a shared hash tag.
public final class RedisClient: Sendable {
    /// The (first) address given: logs, and sessions of a single Redis.
    public let endpoint: RedisEndpoint
    let single: RedisNodePool?
    let cluster: ClusterRouter?

    /// One Redis.
    public init(endpoint: RedisEndpoint, connections: Int = 2, commandTimeout: Duration = .seconds(2),
                logger: Logger = Logger(label: "sluice.redis")) {
        self.endpoint = endpoint
        single = RedisNodePool(endpoint: endpoint, connections: connections, commandTimeout: commandTimeout, logger: logger)
        cluster = nil
    }

    /// A Redis Cluster reached through any of `seeds`.
    public init(cluster seeds: [RedisEndpoint], connections: Int = 2, commandTimeout: Duration = .seconds(2),
                logger: Logger = Logger(label: "sluice.redis")) {
        precondition(!seeds.isEmpty)
        endpoint = seeds[0]
        single = nil
        cluster = ClusterRouter(seeds: seeds, connectionsPerNode: connections, commandTimeout: commandTimeout, logger: logger)
    }

    public var isCluster: Bool { cluster != nil }

    /// Whether the Redis at `endpoint` runs in cluster mode (`INFO cluster`); nil when it cannot
    /// be asked (down at start-up: then the URL, or `--redis-cluster`, decides). Blocks up to
    /// about a second and a half: for start-up only.
    public static func isCluster(_ endpoint: RedisEndpoint) -> Bool? {
        guard case .success(let c) = RedisConnection.open(endpoint, connectTimeout: .milliseconds(500), readTimeout: .seconds(1)) else {
            return nil
        }
        defer { redisFree(c) }
        guard RedisConnection.append([ByteBuffer(string: "INFO"), ByteBuffer(string: "cluster")], to: c) == REDIS_OK else { return nil }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(c, &raw) == REDIS_OK, let raw else { return nil }
        let value = RedisConnection.value(of: raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        guard let text = value.string else { return nil }
        return text.contains("cluster_enabled:1")
    }

    public var isConnected: Bool { single?.isConnected ?? cluster!.isConnected }

    /// Sends one command; the future fails with ``RedisError`` when Redis can't answer. A Redis
    /// error reply is a successful `.error(...)` value.
    public func send(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        if let single { return single.send(arguments, on: eventLoop) }
        return cluster!.send(arguments, on: eventLoop)
    }

    /// The same command to every node (SCRIPT LOAD: each master keeps its own script cache).
    public func sendToEveryNode(_ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> [EventLoopFuture<RESPValue>] {
        if let single { return [single.send(arguments, on: eventLoop)] }
        return cluster!.allPools.map { $0.send(arguments, on: eventLoop) }
    }

    /// The masters, in a stable order (by address): keyless commands that must reach every key
    /// (SCAN, a flush) walk them one after another. One Redis is master 0 of 1.
    public var masterCount: Int { single != nil ? 1 : cluster!.masterPools.count }

    /// A keyless command to master `index` (see ``masterCount``); nil when there is no such
    /// master any more (the cluster's map changed).
    public func send(toMaster index: Int, _ arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue>? {
        if let single { return index == 0 ? single.send(arguments, on: eventLoop) : nil }
        let masters = cluster!.masterPools
        guard masters.indices.contains(index) else { return nil }
        return masters[index].send(arguments, on: eventLoop)
    }

    /// Where a dedicated connection (a subscription, a stream tail) goes: the Redis, or in a
    /// cluster the master of `key`'s slot — for no key, a master picked by `attempt`, so that a
    /// reconnect after a node failed tries another.
    public func sessionEndpoint(forKey key: ByteBuffer?, attempt: Int) -> RedisEndpoint {
        cluster?.sessionEndpoint(forKey: key, attempt: attempt) ?? endpoint
    }

    public var counters: RedisConnection.Counters { single?.counters ?? cluster!.counters }

    /// The cluster's masters as this instance sees them (nil for a single Redis).
    public var clusterNodes: [(address: String, slots: Int, connected: Bool)]? {
        cluster?.nodes.map { ($0.address, $0.slots, $0.connected) }
    }

    public var clusterRefreshes: Int { cluster?.refreshCount ?? 0 }
    public var clusterRedirections: Int { cluster?.redirectionCount ?? 0 }

    public func close() {
        single?.close()
        cluster?.close()
    }
}
