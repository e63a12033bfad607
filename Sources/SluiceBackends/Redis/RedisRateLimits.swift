import NIOCore
import SluiceDomain
import SluiceProtocol

/// Rate limits decided in Redis for every Sluice instance at once (shared mode): each
/// RL.TAKE/RESERVE/SETTLE/PEEK is one call of `Lua/token_bucket.lua`, so a check and its charge
/// are atomic across instances, with the same exact arithmetic as ``TokenBucket`` and Redis's
/// clock as the one clock.
///
/// RL.PENALIZE and RL.SYNC are calls of the same script. Spend budgets (`RL.SPEND`,
/// `RL.BUDGET`) are `Lua/budget.lua`, one atomic check-and-charge; concurrency slots
/// (`RL.ACQUIRE`, `RL.RELEASE`) are ``RedisSlots`` around `Lua/slot_queue.lua`.
///
/// Keys: `sluice:rl:{<n>}:<key>` (the bucket) and `sluice:rv:{<n>}:<id>` (an open reservation,
/// naming its bucket) — `n`, a number below 16,384 from a hash of the key, is also the low bits
/// of the reservation id, so RL.SETTLE finds the tag from the id alone and the script's two keys
/// share a cluster slot — `sluice:bg:<key>` (a budget window), `sluice:sl:{<key>}:*` (a key's slots).
public final class RedisRateLimits: RateLimits {
    public let client: RedisClient
    public let reservationTTL: Int64
    let clock: ScriptClock
    /// The dashboard's budget list: this instance's limiter is not the authority in shared mode.
    let local: EmbeddedRateLimits
    public let slots: RedisSlots

    static let take = ByteBuffer(string: "take"), settle = ByteBuffer(string: "settle"), peek = ByteBuffer(string: "peek")
    static let penalize = ByteBuffer(string: "penalize"), sync = ByteBuffer(string: "sync")

    public init(client: RedisClient, reservationTTL: Int64, local: EmbeddedRateLimits, clock: ScriptClock = .redis,
                slotAgingInterval: Int64 = 1_000, maxWaitersPerKey: Int = RedisRateLimits.maxWaitersPerKey, time: any TimeSource = SystemClock()) {
        self.client = client
        self.reservationTTL = reservationTTL
        self.local = local
        self.clock = clock
        slots = RedisSlots(script: SlotScript(client: client, clock: clock, agingInterval: slotAgingInterval, maxWaiters: maxWaitersPerKey),
                           time: time)
    }

    /// Waiters one key's shared queue holds: a call that orders them reads them all inside
    /// Redis (one script, blocking every client of that Redis meanwhile), so the bound is a
    /// tenth of the embedded one: about a millisecond of Redis per call at the most.
    public static let maxWaitersPerKey = 1_000

    static func budgetKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: "sluice:bg:")
        b.writeImmutableBuffer(key)
        return b
    }

    static func bucketKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: "sluice:rl:{\(tag(of: key))}:")
        b.writeImmutableBuffer(key)
        return b
    }

    /// The hash tag of a key's bucket and of its reservations.
    static func tag(of key: ByteBuffer) -> UInt64 { HashSlot.fnv1a(key) & tagMask }
    static let tagMask: UInt64 = 0x3FFF

    static func reservationKey(_ id: UInt64) -> ByteBuffer { ByteBuffer(string: "sluice:rv:{\(id & tagMask)}:\(id)") }

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
        let id = (RandomID.next() & ~Self.tagMask) | Self.tag(of: key)
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

    /// `[remaining_requests, remaining_tokens, retry_after, reset]` from the script.
    static func state(_ n: [Int64]) throws -> LimitDecision {
        guard n.count == 4 else { throw RedisError.unexpectedReply("token_bucket state: \(n)") }
        return LimitDecision(allowed: n[2] == 0, remainingRequests: n[0], remainingTokens: n[1], retryAfter: n[2], reset: n[3])
    }

    public func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        .later(run(Self.penalize, keys: [Self.bucketKey(key)], [Self.number(ms)], now: now, on: eventLoop)
            .flatMapThrowing { .success(try Self.state($0)) })
    }

    public func sync(_ key: ByteBuffer, _ report: ProviderLimits, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision?, LimitError>> {
        var arguments = [report.remainingRequests ?? -1, report.remainingTokens ?? -1, report.reset].map(Self.number)
        if let spec = report.spec {
            arguments += [spec.requestsPerMinute, spec.tokensPerMinute, spec.requestBurst, spec.tokenBurst].map(Self.number)
        }
        return .later(run(Self.sync, keys: [Self.bucketKey(key)], arguments, now: now, on: eventLoop).flatMapThrowing { n in
            n.isEmpty ? .success(nil) : .success(try Self.state(n))
        })
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        slots.acquire(key, request, now: now, on: eventLoop)
    }

    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        slots.cancelWait(key, ticket: ticket)
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        slots.release(key, slot: slot, now: now, on: eventLoop)
    }

    /// Money as the script's two integers: whole units and micro-units.
    static func parts(_ m: Money) -> [ByteBuffer] {
        [number(m.micros / Money.perUnit), number(m.micros % Money.perUnit)]
    }

    static func money(_ units: Int64, _ micros: Int64) -> Money {
        Money(micros: units.multipliedSaturating(by: Money.perUnit).addingSaturating(micros))
    }

    public func spend(_ key: ByteBuffer, _ request: SpendRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>> {
        let threshold = SpendWindow.nearThreshold(budget: request.budget, fraction: request.near)
        let arguments = [ByteBuffer(string: "spend"), clock.argument(now)] + Self.parts(request.amount) + Self.parts(request.budget)
            + [ByteBuffer(string: request.period.description)] + Self.parts(threshold) + [ByteBuffer(string: String(request.near))]
        return .later(LuaScripts.budget.run(client, keys: [Self.budgetKey(key)], arguments: arguments, on: eventLoop).flatMapThrowing { reply in
            let n = try Self.integers(reply)
            guard n.count == 6 else { throw RedisError.unexpectedReply("budget spend: \(n)") }
            return .success(SpendDecision(allowed: n[0] == 1, remaining: Self.money(n[1], n[2]), reset: n[3], near: n[4] == 1, crossedNear: n[5] == 1))
        })
    }

    public func budget(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<SpendWindow?> {
        .later(LuaScripts.budget.run(client, keys: [Self.budgetKey(key)], arguments: [ByteBuffer(string: "read"), clock.argument(now)], on: eventLoop)
            .flatMapThrowing { reply in
                guard case .array(let items?) = reply else { throw RedisError.unexpectedReply("budget read: \(reply)") }
                if items.isEmpty { return nil }
                guard items.count == 7, case .integer(let su) = items[0], case .integer(let sm) = items[1], case .integer(let bu) = items[2],
                      case .integer(let bm) = items[3], case .integer(let reset) = items[4], let p = items[5].string,
                      let fraction = items[6].string.flatMap(Double.init), let period = BudgetPeriod(p) else {
                    throw RedisError.unexpectedReply("budget read: \(reply)")
                }
                // The window's end in this caller's clock: Redis's may differ a little.
                return SpendWindow(spent: Self.money(Int64(su), Int64(sm)), budget: Self.money(Int64(bu), Int64(bm)),
                                   endsAt: now.addingSaturating(Int64(reset)), period: period, nearFraction: fraction)
            })
    }

    public func statistics() -> RateLimitStatistics {
        var s = RateLimitStatistics(local: local.limiter.summary(), shared: true, fallbacks: 0)  // fallback decisions made here
        s.slotsSubscribed = slots.isSubscribed
        s.slotWaiters = slots.waiterCount
        return s
    }

    public func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse] {
        // Budgets live in Redis; listing them would be a scan. The dashboard shows what this
        // instance decided while Redis was down.
        local.budgetsMostUsed(n, now: now)
    }

    static func integers(_ reply: RESPValue) throws -> [Int64] {
        guard case .array(let items?) = reply else { throw RedisError.unexpectedReply("\(reply)") }
        return try items.map { item in
            guard case .integer(let n) = item else { throw RedisError.unexpectedReply("\(reply)") }
            return Int64(n)
        }
    }
}
