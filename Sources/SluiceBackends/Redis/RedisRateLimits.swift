import NIOCore
import SluiceDomain
import SluiceProtocol

/// Rate limits decided in Redis for every Sluice instance at once (shared mode): each
/// RL.TAKE/RESERVE/SETTLE/PEEK is one call of `Lua/token_bucket.lua`, so a check and its charge
/// are atomic across instances, with the same exact arithmetic as ``TokenBucket`` and Redis's
/// clock as the one clock.
///
/// Keys: `sluice:rl:<key>` (the bucket) and `sluice:rv:<id>` (an open reservation, naming its
/// bucket). Slots and budgets (`RL.ACQUIRE/RELEASE/SPEND`) are still this instance's own.
public final class RedisRateLimits: RateLimits {
    public let client: RedisClient
    public let reservationTTL: Int64
    let clock: ScriptClock
    /// Slots and budgets, per instance.
    let local: EmbeddedRateLimits

    static let take = ByteBuffer(string: "take"), settle = ByteBuffer(string: "settle"), peek = ByteBuffer(string: "peek")

    public init(client: RedisClient, reservationTTL: Int64, local: EmbeddedRateLimits, clock: ScriptClock = .redis) {
        self.client = client
        self.reservationTTL = reservationTTL
        self.local = local
        self.clock = clock
    }

    static func bucketKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: "sluice:rl:")
        b.writeImmutableBuffer(key)
        return b
    }

    static func reservationKey(_ id: UInt64) -> ByteBuffer { ByteBuffer(string: "sluice:rv:\(id)") }

    static func number(_ n: Int64) -> ByteBuffer { ByteBuffer(string: String(n)) }

    func run(_ op: ByteBuffer, keys: [ByteBuffer], _ arguments: [ByteBuffer], now: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<[Int64]> {
        LuaScripts.tokenBucket.run(client, keys: keys, arguments: [op, clock.argument(now)] + arguments, on: eventLoop)
            .flatMapThrowing { reply in try Self.integers(reply) }
    }

    func takeArguments(_ spec: LimitSpec, _ tokens: Int64) -> [ByteBuffer] {
        [spec.requestsPerMinute, spec.tokensPerMinute, spec.requestBurst, spec.tokenBurst, tokens].map(Self.number)
    }

    static func decision(_ n: [Int64]) throws -> LimitDecision {
        guard n.count == 5 else { throw RedisError.unexpectedReply("token_bucket take: \(n)") }
        return LimitDecision(allowed: n[0] == 1, remainingRequests: n[1], remainingTokens: n[2], retryAfter: n[3], reset: n[4])
    }

    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        if let impossible = spec.impossibility(tokens: tokens) { return .ready(.failure(impossible)) }
        return .later(run(Self.take, keys: [Self.bucketKey(key)], takeArguments(spec, tokens), now: now, on: eventLoop)
            .flatMapThrowing { .success(try Self.decision($0)) })
    }

    public func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<ReservationDecision, LimitError>> {
        if let impossible = spec.impossibility(tokens: estimate) { return .ready(.failure(impossible)) }
        let id = RandomID.next()
        return .later(run(Self.take, keys: [Self.bucketKey(key), Self.reservationKey(id)],
                          takeArguments(spec, estimate) + [Self.number(reservationTTL)], now: now, on: eventLoop)
            .flatMapThrowing { n in
                let d = try Self.decision(n)
                return .success(ReservationDecision(decision: d, id: d.allowed ? id : nil))
            })
    }

    public func settle(id: UInt64, actual: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Settlement, LimitError>> {
        .later(run(Self.settle, keys: [Self.reservationKey(id)], [Self.number(actual)], now: now, on: eventLoop).flatMapThrowing { n in
            if n.isEmpty { return .failure(.unknownReservation) }
            guard n.count == 2 else { throw RedisError.unexpectedReply("token_bucket settle: \(n)") }
            return .success(Settlement(delta: n[0], remainingTokens: n[1]))
        })
    }

    public func peek(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<LimitSnapshot?> {
        .later(run(Self.peek, keys: [Self.bucketKey(key)], [], now: now, on: eventLoop).flatMapThrowing { n in
            if n.isEmpty { return nil }
            guard n.count == 6 else { throw RedisError.unexpectedReply("token_bucket peek: \(n)") }
            return LimitSnapshot(decision: LimitDecision(allowed: n[2] == 0, remainingRequests: n[0], remainingTokens: n[1],
                                                         retryAfter: n[2], reset: n[3]),
                                 spec: LimitSpec(requestsPerMinute: n[4], tokensPerMinute: n[5]))
        })
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        local.acquire(key, request, now: now, on: eventLoop)
    }

    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        local.cancelWait(key, ticket: ticket)
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        local.release(key, slot: slot, now: now, on: eventLoop)
    }

    public func spend(_ key: ByteBuffer, _ request: SpendRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>> {
        local.spend(key, request, now: now, on: eventLoop)
    }

    public func budget(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<SpendWindow?> {
        local.budget(key, now: now, on: eventLoop)
    }

    public func statistics() -> RateLimitStatistics {
        RateLimitStatistics(local: local.limiter.summary(), shared: true, fallbacks: 0)
    }

    public func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse] {
        local.budgetsMostUsed(n, now: now)  // RL.SPEND is per instance
    }

    static func integers(_ reply: RESPValue) throws -> [Int64] {
        guard case .array(let items?) = reply else { throw RedisError.unexpectedReply("\(reply)") }
        return try items.map { item in
            guard case .integer(let n) = item else { throw RedisError.unexpectedReply("\(reply)") }
            return Int64(n)
        }
    }
}
