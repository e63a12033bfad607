import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// RL.TAKE, RL.RESERVE, RL.SETTLE, RL.PEEK: RPM/TPM token buckets per key;
/// RL.ACQUIRE, RL.RELEASE: concurrency slots; RL.SPEND: spend budgets over a window.
enum RateLimitCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let limiter = env.limiter
        let shared = env.sharedLimiter
        return [
            Command("rl.take", arity: -4, summary: "RL.TAKE key rpm tpm [TOKENS n] [BURST requests tokens]: [allowed, remaining_requests, remaining_tokens, retry_after_ms, reset_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var spec = try limitSpec(&ctx)
                var tokens: Int64 = 0
                while ctx.hasMore {
                    let option = try ctx.next()
                    if option.isKeyword("TOKENS") {
                        tokens = try nonNegative(&ctx, "TOKENS")
                    } else {
                        try burst(option, &ctx, &spec)
                    }
                }
                if let shared {
                    let now = ctx.now, owned = TieredCache.copy(key), spec = spec, tokens = tokens
                    return .later(shared.take(owned, spec: spec, tokens: tokens, on: ctx.eventLoop).recover { error in
                        fallback(env, because: error) { limiter.take(owned, spec: spec, tokens: tokens, now: now) }
                    }.map(takeReply))
                }
                let decision = try unwrap(limiter.take(key, spec: spec, tokens: tokens, now: ctx.now))
                out.writeRESPArrayHeader(5)
                out.writeRESPInteger(decision.allowed ? 1 : 0)
                writeNumbers(decision, into: &out)
                return .done
            },
            Command("rl.reserve", arity: -5, summary: "RL.RESERVE key rpm tpm estimate [BURST requests tokens]: [allowed, reservation_id|nil, retry_after_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var spec = try limitSpec(&ctx)
                let estimate = try nonNegative(&ctx, "estimate")
                while ctx.hasMore { try burst(try ctx.next(), &ctx, &spec) }
                if let shared {
                    let now = ctx.now, owned = TieredCache.copy(key), spec = spec
                    let id = UInt64.random(in: 1 ... (UInt64.max >> 1))
                    return .later(shared.take(owned, spec: spec, tokens: estimate, reservation: id, on: ctx.eventLoop)
                        .map { ($0, id) }
                        .recover { error in
                            var localID = id
                            let result = fallback(env, because: error) {
                                let (result, local) = limiter.reserve(owned, spec: spec, estimate: estimate, now: now)
                                localID = local
                                return result
                            }
                            return (result, localID)
                        }
                        .map { reserveReply($0.0, id: $0.1) })
                }
                let (result, id) = limiter.reserve(key, spec: spec, estimate: estimate, now: ctx.now)
                let decision = try unwrap(result)
                out.writeRESPArrayHeader(3)
                out.writeRESPInteger(decision.allowed ? 1 : 0)
                if decision.allowed { out.writeRESPBulk(String(id)) } else { out.writeRESPNull() }
                out.writeRESPInteger(Int(decision.retryAfter))
                return .done
            },
            Command("rl.settle", arity: 3, summary: "RL.SETTLE reservation_id actual_tokens: [charged (+) or refunded (-) tokens, remaining_tokens]") { ctx, out throws(CommandError) in
                guard let id = UInt64(try ctx.next().text) else { throw unknownReservation }
                let actual = try nonNegative(&ctx, "actual")
                if let shared {
                    let now = ctx.now
                    // A reservation made while Redis was down lives in this instance.
                    let local: @Sendable () -> Result<(delta: Int64, remainingTokens: Int64), LimitError> = { limiter.settle(id: id, actual: actual, now: now) }
                    return .later(shared.settle(id: id, actual: actual, on: ctx.eventLoop).map { result in
                        if case .failure(.unknownReservation) = result { return local() }
                        return result
                    }.recover { _ in local() }.map(settleReply))
                }
                let (delta, remaining) = try unwrap(limiter.settle(id: id, actual: actual, now: ctx.now))
                out.writeRESPArrayHeader(2)
                out.writeRESPInteger(Int(delta))
                out.writeRESPInteger(Int(remaining))
                return .done
            },
            Command("rl.peek", arity: 2, summary: "RL.PEEK key: [remaining_requests, remaining_tokens, retry_after_ms, reset_ms, rpm, tpm] or nil; charges nothing") { ctx, out throws(CommandError) in
                if let shared {
                    let now = ctx.now, owned = TieredCache.copy(try ctx.next())
                    return .later(shared.peek(owned, on: ctx.eventLoop).recover { _ in limiter.peek(owned, now: now) }.map(peekReply))
                }
                guard let (d, spec) = limiter.peek(try ctx.next(), now: ctx.now) else {
                    out.writeRESPNullArray()
                    return .done
                }
                out.writeRESPArrayHeader(6)
                writeNumbers(d, into: &out)
                out.writeRESPInteger(Int(spec.requestsPerMinute))
                out.writeRESPInteger(Int(spec.tokensPerMinute))
                return .done
            },
            Command("rl.acquire", arity: -3, summary: "RL.ACQUIRE key limit [TTL ms]: [acquired, slot_id|nil, in_use, retry_after_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                let limit = try nonNegative(&ctx, "limit")
                guard limit >= 1, limit <= 1_000_000 else { throw CommandError("limit must be 1 to 1000000") }
                let ttl = try trailingMilliseconds(&ctx, "TTL", default: 60_000)
                let d = try unwrap(limiter.acquire(key, limit: Int(limit), duration: ttl, now: ctx.now))
                out.writeRESPArrayHeader(4)
                out.writeRESPInteger(d.acquired ? 1 : 0)
                if let slot = d.slot { out.writeRESPBulk(String(slot)) } else { out.writeRESPNull() }
                out.writeRESPInteger(d.inUse)
                out.writeRESPInteger(Int(d.retryAfter))
                return .done
            },
            Command("rl.release", arity: 3, summary: "RL.RELEASE key slot_id: 1 released, 0 unknown or expired") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                let slot = UInt64(try ctx.next().text)
                out.writeRESPInteger(slot.map { limiter.release(key, slot: $0, now: ctx.now) } == true ? 1 : 0)
                return .done
            },
            Command("rl.spend", arity: -4, summary: "RL.SPEND key amount budget [PERIOD ms]: [allowed, remaining, reset_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                guard let amount = try ctx.next().doubleValue, amount >= 0 else { throw CommandError("amount must be a non-negative number") }
                guard let budget = try ctx.next().doubleValue, budget >= 0 else { throw CommandError("budget must be a non-negative number") }
                let period = try trailingMilliseconds(&ctx, "PERIOD", default: 86_400_000)
                let d = try unwrap(limiter.spend(key, amount: amount, budget: budget, period: period, now: ctx.now))
                out.writeRESPArrayHeader(3)
                out.writeRESPInteger(d.allowed ? 1 : 0)
                out.writeRESPDouble(d.remaining)
                out.writeRESPInteger(Int(d.reset))
                return .done
            },
        ]
    }

    static let unknownReservation = CommandError("unknown or expired reservation")

    // MARK: Shared mode replies (built as values: they are written when Redis answers)

    /// A decision made without Redis, as --limits-when-redis-down says.
    static func fallback(_ env: ServerEnvironment, because error: any Error, local: () -> Result<LimitDecision, LimitError>) -> Result<LimitDecision, LimitError> {
        env.counters.limitFallbacks.add(1, ordering: .relaxed)
        if !(error is RedisError) {
            // Not an outage (e.g. a script error): say so loudly, it is a bug.
            env.logger.error("shared rate limit failed; deciding locally", metadata: ["error": "\(error)"])
        }
        switch env.configuration.limitsWhenRedisDown {
        case .local: return local()
        case .deny: return .success(LimitDecision(allowed: false, remainingRequests: -1, remainingTokens: -1, retryAfter: 1000, reset: 0))
        case .allow: return .success(LimitDecision(allowed: true, remainingRequests: -1, remainingTokens: -1, retryAfter: 0, reset: 0))
        }
    }

    static func errorValue(_ result: Result<some Any, LimitError>) -> RESPValue? {
        guard case .failure(let error) = result else { return nil }
        do {
            _ = try unwrap(Result<Int, LimitError>.failure(error))
        } catch {
            return .error(error.line)
        }
        return nil
    }

    static func takeReply(_ result: Result<LimitDecision, LimitError>) -> RESPValue {
        guard case .success(let d) = result else { return errorValue(result)! }
        return .array([.integer(d.allowed ? 1 : 0), .integer(Int(d.remainingRequests)), .integer(Int(d.remainingTokens)),
                       .integer(Int(d.retryAfter)), .integer(Int(d.reset))])
    }

    static func reserveReply(_ result: Result<LimitDecision, LimitError>, id: UInt64) -> RESPValue {
        guard case .success(let d) = result else { return errorValue(result)! }
        return .array([.integer(d.allowed ? 1 : 0), d.allowed ? .bulk(String(id)) : .null, .integer(Int(d.retryAfter))])
    }

    static func settleReply(_ result: Result<(delta: Int64, remainingTokens: Int64), LimitError>) -> RESPValue {
        guard case .success(let (delta, remaining)) = result else { return errorValue(result)! }
        return .array([.integer(Int(delta)), .integer(Int(remaining))])
    }

    static func peekReply(_ found: (LimitDecision, LimitSpec)?) -> RESPValue {
        guard let (d, spec) = found else { return .array(nil) }
        return .array([.integer(Int(d.remainingRequests)), .integer(Int(d.remainingTokens)), .integer(Int(d.retryAfter)),
                       .integer(Int(d.reset)), .integer(Int(spec.requestsPerMinute)), .integer(Int(spec.tokensPerMinute))])
    }

    /// remaining_requests, remaining_tokens, retry_after_ms, reset_ms: shared by TAKE and PEEK.
    static func writeNumbers(_ d: LimitDecision, into out: inout RESPWriter) {
        out.writeRESPInteger(Int(d.remainingRequests))
        out.writeRESPInteger(Int(d.remainingTokens))
        out.writeRESPInteger(Int(d.retryAfter))
        out.writeRESPInteger(Int(d.reset))
    }
    /// Keeps level arithmetic (tokens × 60,000) far from overflow.
    static let maxAmount: Int64 = 1 << 40

    /// An optional last option `KEYWORD ms` (at least 1 ms), e.g. `TTL 5000`.
    static func trailingMilliseconds(_ ctx: inout CommandContext, _ keyword: StaticString, default value: Int64) throws(CommandError) -> Int64 {
        guard ctx.hasMore else { return value }
        guard try ctx.next().isKeyword(keyword) else { throw CommandError.syntax }
        let ms = try nonNegative(&ctx, "\(keyword)")
        guard ms >= 1 else { throw CommandError("\(keyword) must be at least 1 ms") }
        guard !ctx.hasMore else { throw CommandError.syntax }
        return ms
    }

    static func limitSpec(_ ctx: inout CommandContext) throws(CommandError) -> LimitSpec {
        let rpm = try nonNegative(&ctx, "rpm"), tpm = try nonNegative(&ctx, "tpm")
        return LimitSpec(requestsPerMinute: rpm, tokensPerMinute: tpm)
    }

    static func burst(_ option: ByteBuffer, _ ctx: inout CommandContext, _ spec: inout LimitSpec) throws(CommandError) {
        guard option.isKeyword("BURST") else { throw CommandError.syntax }
        spec.requestBurst = try nonNegative(&ctx, "BURST")
        spec.tokenBurst = try nonNegative(&ctx, "BURST")
    }

    static func nonNegative(_ ctx: inout CommandContext, _ what: String) throws(CommandError) -> Int64 {
        guard ctx.hasMore else { throw CommandError.syntax }
        let n = try ctx.nextInteger()
        guard n >= 0, Int64(n) <= maxAmount else { throw CommandError("\(what) must be between 0 and \(maxAmount)") }
        return Int64(n)
    }

    static func unwrap<T>(_ result: Result<T, LimitError>) throws(CommandError) -> T {
        switch result {
        case .success(let v): return v
        case .failure(.exceedsBurst(let asked, let burst)):
            throw CommandError("asking for \(asked) but the bucket holds at most \(burst): it can never be allowed")
        case .failure(.tooManyKeys(let limit)):
            throw CommandError("too many rate-limit keys (at most \(limit) live; full buckets are reclaimed)")
        case .failure(.unknownReservation):
            throw unknownReservation
        }
    }
}
