import NIOCore
import SluiceDomain
import SluiceProtocol

/// Circuit breakers kept in Redis (shared mode): one hash `sluice:cb:<name>` per breaker, every
/// transition inside one call of `Lua/breaker.lua`, so a breaker that opens through one instance
/// is open for all of them at their next call, with no read-then-write race. Same rules,
/// defaults and tickets as ``CircuitBreaker``; Redis's clock is the one clock.
public final class RedisBreakers: Breakers {
    public let client: RedisClient
    public let defaults: BreakerPolicy
    let clock: ScriptClock
    /// Only for ``statistics(now:)``: the breakers this instance used while Redis was down.
    let local: EmbeddedBreakers

    public init(client: RedisClient, defaults: BreakerPolicy = BreakerPolicy(), local: EmbeddedBreakers, clock: ScriptClock = .redis) {
        self.client = client
        self.defaults = defaults
        self.local = local
        self.clock = clock
    }

    static func key(_ name: String) -> ByteBuffer { ByteBuffer(string: "sluice:cb:" + name) }

    var defaultArguments: [ByteBuffer] {
        [String(defaults.window), String(defaults.minimumCalls), String(defaults.failureRate), String(defaults.slowCallMilliseconds),
         String(defaults.slowCallRate), String(defaults.openMilliseconds), String(defaults.probes)].map { ByteBuffer(string: $0) }
    }

    func run(_ op: String, _ name: String, _ extra: [String], now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<[RESPValue]> {
        LuaScripts.breaker.run(client, keys: [Self.key(name)],
                               arguments: [ByteBuffer(string: op), clock.argument(now)] + defaultArguments + extra.map { ByteBuffer(string: $0) },
                               on: eventLoop).flatMapThrowing { reply in
            guard case .array(let items?) = reply else { throw RedisError.unexpectedReply("breaker \(op): \(reply)") }
            return items
        }
    }

    static func integer(_ v: RESPValue) throws -> Int64 {
        guard case .integer(let n) = v else { throw RedisError.unexpectedReply("\(v)") }
        return Int64(n)
    }

    static func state(_ v: RESPValue) throws -> CircuitBreaker.State {
        guard let s = v.string.flatMap(CircuitBreaker.State.init) else { throw RedisError.unexpectedReply("\(v)") }
        return s
    }

    public func allow(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Permission, BreakerError>> {
        .later(run("allow", name, [], now: now, on: eventLoop).flatMapThrowing { items in
            guard items.count == 4 else { throw RedisError.unexpectedReply("breaker allow: \(items)") }
            let ticket = try Self.integer(items[2])
            return .success(CircuitBreaker.Permission(allowed: try Self.integer(items[0]) == 1, state: try Self.state(items[1]),
                                                      ticket: ticket <= 0 ? nil : UInt64(ticket), retryAfter: try Self.integer(items[3])))
        })
    }

    public func report(_ name: String, ticket: UInt64, outcome: CircuitBreaker.Outcome, latency: Int64?, now: Int64,
                       on eventLoop: any EventLoop) -> Deferred<Result<BreakerReport, BreakerError>> {
        .later(run("report", name, [String(ticket), outcome == .failure ? "fail" : "ok", String(latency ?? 0)], now: now, on: eventLoop)
            .flatMapThrowing { items in
                guard items.count == 2 else { throw RedisError.unexpectedReply("breaker report: \(items)") }
                return .success(BreakerReport(counted: try Self.integer(items[0]) == 1, state: try Self.state(items[1])))
            })
    }

    public func state(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Snapshot, BreakerError>> {
        .later(run("state", name, [], now: now, on: eventLoop).flatMapThrowing { items in
            guard items.count == 8 else { throw RedisError.unexpectedReply("breaker state: \(items)") }
            let forced = items[1].string.flatMap(CircuitBreaker.Forced.init)  // "" = not forced
            return .success(CircuitBreaker.Snapshot(
                state: try Self.state(items[0]), forced: forced, calls: Int(try Self.integer(items[2])),
                failures: Int(try Self.integer(items[3])), slow: Int(try Self.integer(items[4])),
                nextTransition: try Self.integer(items[5]), generation: UInt64(clamping: try Self.integer(items[6])),
                probesIssued: Int(try Self.integer(items[7]))))
        })
    }

    public func force(_ name: String, _ pin: CircuitBreaker.Forced?, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Void, BreakerError>> {
        .later(run("force", name, [pin?.rawValue ?? "auto"], now: now, on: eventLoop).map { _ in .success(()) })
    }

    public func configure(_ name: String, _ change: BreakerPolicyChange, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<BreakerPolicy, BreakerError>> {
        var fields: [String] = []
        if let v = change.window { fields += ["window", String(v)] }
        if let v = change.minimumCalls { fields += ["min_calls", String(v)] }
        if let v = change.failureRate { fields += ["failure_rate", String(v)] }
        if let v = change.slowCallMilliseconds { fields += ["slow_ms", String(v)] }
        if let v = change.slowCallRate { fields += ["slow_rate", String(v)] }
        if let v = change.openMilliseconds { fields += ["open_ms", String(v)] }
        if let v = change.probes { fields += ["probes", String(v)] }
        return .later(run("config", name, fields, now: now, on: eventLoop).flatMapThrowing { items in
            guard items.count == 7, let failureRate = items[2].string.flatMap(Double.init),
                  let slowRate = items[4].string.flatMap(Double.init) else {
                throw RedisError.unexpectedReply("breaker config: \(items)")
            }
            var p = BreakerPolicy()
            p.window = Int(try Self.integer(items[0]))
            p.minimumCalls = Int(try Self.integer(items[1]))
            p.failureRate = failureRate
            p.slowCallMilliseconds = try Self.integer(items[3])
            p.slowCallRate = slowRate
            p.openMilliseconds = try Self.integer(items[5])
            p.probes = Int(try Self.integer(items[6]))
            return .success(p)
        })
    }

    public func statistics(now: Int64) -> BreakerRegistry.Summary {
        local.statistics(now: now)
    }
}
