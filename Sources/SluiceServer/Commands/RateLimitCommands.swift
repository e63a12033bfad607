import NIOCore
import SluiceDomain
import SluiceProtocol

/// RL.TAKE, RL.RESERVE, RL.SETTLE, RL.PEEK: RPM/TPM token buckets per key;
/// RL.ACQUIRE, RL.RELEASE: concurrency slots; RL.SPEND: spend budgets over a window.
enum RateLimitCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let limiter = env.limiter
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
                let (delta, remaining) = try unwrap(limiter.settle(id: id, actual: actual, now: ctx.now))
                out.writeRESPArrayHeader(2)
                out.writeRESPInteger(Int(delta))
                out.writeRESPInteger(Int(remaining))
                return .done
            },
            Command("rl.peek", arity: 2, summary: "RL.PEEK key: [remaining_requests, remaining_tokens, retry_after_ms, reset_ms, rpm, tpm] or nil; charges nothing") { ctx, out throws(CommandError) in
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
                var ttl: Int64 = 60_000
                if ctx.hasMore {
                    guard try ctx.next().isKeyword("TTL") else { throw CommandError.syntax }
                    ttl = try nonNegative(&ctx, "TTL")
                    guard ttl >= 1 else { throw CommandError("TTL must be at least 1 ms") }
                }
                guard !ctx.hasMore else { throw CommandError.syntax }
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
                var period: Int64 = 86_400_000
                if ctx.hasMore {
                    guard try ctx.next().isKeyword("PERIOD") else { throw CommandError.syntax }
                    period = try nonNegative(&ctx, "PERIOD")
                    guard period >= 1 else { throw CommandError("PERIOD must be at least 1 ms") }
                }
                guard !ctx.hasMore else { throw CommandError.syntax }
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

    /// remaining_requests, remaining_tokens, retry_after_ms, reset_ms: shared by TAKE and PEEK.
    static func writeNumbers(_ d: LimitDecision, into out: inout RESPWriter) {
        out.writeRESPInteger(Int(d.remainingRequests))
        out.writeRESPInteger(Int(d.remainingTokens))
        out.writeRESPInteger(Int(d.retryAfter))
        out.writeRESPInteger(Int(d.reset))
    }
    /// Keeps level arithmetic (tokens × 60,000) far from overflow.
    static let maxAmount: Int64 = 1 << 40

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
