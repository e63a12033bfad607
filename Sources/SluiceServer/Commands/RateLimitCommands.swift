import Logging
import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// RL.TAKE, RL.RESERVE, RL.SETTLE, RL.PEEK: RPM/TPM token buckets per key;
/// RL.ACQUIRE, RL.RELEASE: concurrency slots; RL.SPEND: spend budgets over a window.
struct RateLimitCommands: CommandGroup {
    let limits: any RateLimits
    /// Named policies (`POLICY name` instead of numbers) and the decisions counted under each.
    let policies: PolicyBook
    /// Where a budget's near-budget signal is logged (once per window).
    var logger = Logger(label: "sluice")

    static let unknownReservation = CommandError("unknown or expired reservation")

    var commands: [Command] {
        let limits = limits, policies = policies, logger = logger
        return [
            Command("rl.take", arity: -4, summary: "RL.TAKE key (rpm tpm | POLICY name) [TOKENS n] [BURST requests tokens] [DRYRUN]: [allowed, remaining_requests, remaining_tokens, retry_after_ms, reset_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                var (spec, policy) = try Self.limitSpec(&ctx, policies)
                var tokens: Int64 = 0
                var dryRun = policy.map(policies.isDryRun) ?? false
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    if option.isKeyword("TOKENS") {
                        tokens = try Self.amount(&ctx, "TOKENS")
                    } else if option.isKeyword("DRYRUN") {
                        dryRun = true
                    } else {
                        try Self.burst(option, &ctx, &spec)
                    }
                }
                let (limit, name, shadow) = (spec, policy, dryRun)
                return ctx.reply(limits.take(key, spec: spec, tokens: tokens, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let d) = result else { return Self.writeFailure(result, &out) }
                    // Counted as decided; a dry run (shadow mode) then allows whatever was decided.
                    policies.count(policy: name, key: key, allowed: d.allowed, remainingRequests: d.remainingRequests, remainingTokens: d.remainingTokens, spec: limit)
                    if shadow && !d.allowed { policies.countDryRunRefusal(policy: name) }
                    out.writeRESPArrayHeader(5)
                    out.writeRESPInteger(d.allowed || shadow ? 1 : 0)
                    Self.writeNumbers(d, into: &out)
                }
            },
            Command("rl.reserve", arity: -5, summary: "RL.RESERVE key (rpm tpm | POLICY name) estimate [BURST requests tokens]: [allowed, reservation_id|nil, retry_after_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                var (spec, policy) = try Self.limitSpec(&ctx, policies)
                let estimate = try Self.amount(&ctx, "estimate")
                var words = OptionWords()
                while ctx.hasMore { try Self.burst(try ctx.nextOption(&words), &ctx, &spec) }
                let (limit, name) = (spec, policy)
                return ctx.reply(limits.reserve(key, spec: spec, estimate: estimate, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let r) = result else { return Self.writeFailure(result, &out) }
                    policies.count(policy: name, key: key, allowed: r.decision.allowed, remainingRequests: r.decision.remainingRequests,
                                   remainingTokens: r.decision.remainingTokens, spec: limit)
                    out.writeRESPArrayHeader(3)
                    out.writeRESPInteger(r.decision.allowed ? 1 : 0)
                    if let id = r.id { out.writeRESPBulk(String(id)) } else { out.writeRESPNull() }
                    out.writeRESPInteger(Int(r.decision.retryAfter))
                }
            },
            Command("rl.settle", arity: 3, summary: "RL.SETTLE reservation_id actual_tokens: [charged (+) or refunded (-) tokens, remaining_tokens]") { ctx, out throws(CommandError) in
                guard let id = UInt64(try ctx.next().text) else { throw Self.unknownReservation }
                let actual = try Self.amount(&ctx, "actual")
                return ctx.reply(limits.settle(id: id, actual: actual, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let s) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPArrayHeader(2)
                    out.writeRESPInteger(Int(s.delta))
                    out.writeRESPInteger(Int(s.remainingTokens))
                }
            },
            Command("rl.peek", arity: 2, summary: "RL.PEEK key: [remaining_requests, remaining_tokens, retry_after_ms, reset_ms, rpm, tpm] or nil; charges nothing") { ctx, out throws(CommandError) in
                ctx.reply(limits.peek(try ctx.nextName(), now: ctx.monotonic, on: ctx.eventLoop), into: &out) { snapshot, out in
                    guard let snapshot else { return out.writeRESPNullArray() }
                    out.writeRESPArrayHeader(6)
                    Self.writeNumbers(snapshot.decision, into: &out)
                    out.writeRESPInteger(Int(snapshot.spec.requestsPerMinute))
                    out.writeRESPInteger(Int(snapshot.spec.tokensPerMinute))
                }
            },
            Command("rl.penalize", arity: 3, summary: "RL.PENALIZE key retry_after_ms: empties the key's buckets and holds them (a provider's 429 Retry-After): [remaining_requests, remaining_tokens, retry_after_ms, reset_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                guard let ms = try ctx.next().decimalValue, ms >= 0, ms <= Self.maxHold else {
                    throw CommandError("retry_after_ms must be 0 to \(Self.maxHold)")
                }
                return ctx.reply(limits.penalize(key, for: Int64(ms), now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let d) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPArrayHeader(4)
                    Self.writeNumbers(d, into: &out)
                }
            },
            Command("rl.sync", arity: -5, summary: "RL.SYNC key remaining_requests remaining_tokens reset_ms [rpm tpm | POLICY name] [BURST r t]: align the buckets with the provider's x-ratelimit-remaining-* (-1: not reported): [remaining_requests, remaining_tokens, retry_after_ms, reset_ms] or nil") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                let requests = try Self.providerCount(&ctx, "remaining_requests")
                let tokens = try Self.providerCount(&ctx, "remaining_tokens")
                guard let reset = try ctx.next().decimalValue, reset >= 0, reset <= Self.maxHold else {
                    throw CommandError("reset_ms must be 0 to \(Self.maxHold)")
                }
                var report = ProviderLimits(remainingRequests: requests, remainingTokens: tokens, reset: Int64(reset))
                if ctx.hasMore {
                    var (spec, _) = try Self.limitSpec(&ctx, policies)
                    var words = OptionWords()
                    while ctx.hasMore { try Self.burst(try ctx.nextOption(&words), &ctx, &spec) }
                    if let impossible = spec.impossibility(tokens: 0) { throw Self.error(impossible) }
                    report.spec = spec
                }
                return ctx.reply(limits.sync(key, report, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let d) = result else { return Self.writeFailure(result, &out) }
                    guard let d else { return out.writeRESPNullArray() }
                    out.writeRESPArrayHeader(4)
                    Self.writeNumbers(d, into: &out)
                }
            },
            Command("rl.acquire", arity: -3,
                    summary: "RL.ACQUIRE key max_in_flight [PRIORITY p] [WAIT ms] [LEASE ms]: [granted, slot_id|nil, queue_position, estimated_wait_ms]") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                guard let limit = try ctx.next().decimalValue, limit >= 1, limit <= 100_000 else {
                    throw CommandError("limit must be 1 to 100000")
                }
                var request = SlotRequest(limit: Int(limit), lease: 60_000), leaseGiven = false
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    if option.isKeyword("PRIORITY") {
                        guard let p = try ctx.next().decimalValue, p >= -Self.maxPriority, p <= Self.maxPriority else {
                            throw CommandError("PRIORITY must be an integer from -\(Self.maxPriority) to \(Self.maxPriority)")
                        }
                        request.priority = Int(p)
                    } else if option.isKeyword("WAIT") {
                        // A wait longer than a day is a client that forgot, not one that waits.
                        guard let ms = try ctx.next().decimalValue, ms >= 0, ms <= 86_400_000 else {
                            throw CommandError("WAIT must be 0 to 86400000 ms")
                        }
                        request.wait = Int64(ms)
                    } else if option.isKeyword("LEASE") || option.isKeyword("TTL") {
                        // Two names of one option: both given is a doubled option too.
                        guard !leaseGiven else { throw CommandError.syntax }
                        leaseGiven = true
                        // A slot outliving a day is a leak, not a lease on work in progress.
                        guard let ms = try ctx.next().decimalValue, ms >= 1, ms <= 86_400_000 else {
                            throw CommandError("LEASE must be 1 to 86400000 ms")
                        }
                        request.lease = Int64(ms)
                    } else {
                        throw CommandError.syntax
                    }
                }
                let answer = limits.acquire(key, request, now: ctx.monotonic, on: ctx.eventLoop)
                if case .later(let future) = answer, request.wait > 0 {
                    // A client that goes away while waiting leaves the queue.
                    let ticket = request.ticket, owned = ByteBuffer.owned(key)
                    ctx.session.onClose(ticket) { limits.cancelWait(owned, ticket: ticket) }
                    let session = NIOLoopBound(ctx.session, eventLoop: ctx.eventLoop)
                    let asked = ctx.monotonic, loop = ctx.eventLoop
                    future.whenComplete { result in
                        session.value.removeCloseHook(ticket)
                        // Granted as the client left: nobody will release it; give it back now
                        // rather than hold it for its whole lease.
                        if session.value.leaving, case .success(.success(let d)) = result, d.granted, let slot = d.slot {
                            _ = limits.release(owned, slot: slot, now: asked.addingSaturating(d.waited), on: loop)
                        }
                    }
                }
                // A waiting acquire holds the connection's next request until it is answered, as
                // Redis's blocking commands do: a pipelined GET after it must read what the slot
                // protects only once the slot is held.
                return ctx.reply(answer, ordered: request.wait == 0, into: &out) { result, out in
                    guard case .success(let d) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPArrayHeader(4)
                    out.writeRESPInteger(d.granted ? 1 : 0)
                    if let slot = d.slot { out.writeRESPBulk(String(slot)) } else { out.writeRESPNull() }
                    out.writeRESPInteger(d.queuePosition)
                    out.writeRESPInteger(Int(d.estimatedWait))
                }
            },
            Command("rl.release", arity: 3, summary: "RL.RELEASE key slot_id: 1 released, 0 unknown or expired") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                guard let slot = UInt64(try ctx.next().text) else {
                    out.writeRESPInteger(0)
                    return .done
                }
                return ctx.reply(limits.release(key, slot: slot, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { released, out in
                    out.writeRESPInteger(released ? 1 : 0)
                }
            },
            Command("rl.spend", arity: -3,
                    summary: "RL.SPEND key amount (budget | BUDGET b | POLICY name) [PERIOD day|week|month|ms] [NEAR fraction] [DRYRUN]: [allowed, remaining, reset_ms, near]") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                guard let amount = Money(try ctx.next().text[...]) else { throw Self.badMoney("amount") }
                var budget: Money?, policyName: String?
                var period = BudgetPeriod.day, near = 0.8
                var first = true, dryRun = false
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    defer { first = false }
                    if first && !Self.spendOptions.contains(where: { option.isKeyword($0) }) {
                        // The older positional form: RL.SPEND key amount budget.
                        guard let b = Money(option.text[...]) else { throw Self.badMoney("budget") }
                        budget = b
                    } else if option.isKeyword("BUDGET") {
                        // The budget comes one way: positional, BUDGET or POLICY.
                        guard budget == nil else { throw CommandError.syntax }
                        guard let b = Money(try ctx.next().text[...]) else { throw Self.badMoney("budget") }
                        budget = b
                    } else if option.isKeyword("PERIOD") {
                        period = try Self.budgetPeriod(try ctx.next())
                    } else if option.isKeyword("NEAR") {
                        guard let f = try ctx.next().doubleValue, f > 0, f <= 1 else { throw CommandError("NEAR must be above 0 and at most 1") }
                        near = f
                    } else if option.isKeyword("POLICY") {
                        guard budget == nil else { throw CommandError.syntax }
                        let name = try ctx.next().text
                        guard let policy = policies.budget(named: name) else { throw Self.noPolicy("budget", name) }
                        (budget, period, near, policyName) = (policy.budget, policy.period, policy.near, name)
                        if policies.isDryRunBudget(name) { dryRun = true }
                    } else if option.isKeyword("DRYRUN") {
                        dryRun = true
                    } else {
                        throw CommandError.syntax
                    }
                }
                guard let budget else { throw CommandError("a budget is needed: RL.SPEND key amount budget, BUDGET b or POLICY name") }
                let spender = policyName, shadow = dryRun
                let request = SpendRequest(amount: amount, budget: budget, period: period, near: near)
                let owned = ByteBuffer.owned(key)
                return ctx.reply(limits.spend(key, request, now: ctx.now, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let d) = result else { return Self.writeFailure(result, &out) }
                    policies.countSpend(policy: spender, key: owned, allowed: d.allowed, near: d.near, amount: amount.units)
                    if shadow && !d.allowed { policies.countDryRunRefusal(policy: spender) }
                    if d.crossedNear {
                        logger.notice("budget near its limit", metadata: [
                            "key": "\(String(decoding: owned.readableBytesView.prefix(200), as: UTF8.self))",
                            "remaining": "\(d.remaining)", "budget": "\(budget)", "policy": "\(spender ?? "none")",
                        ])
                    }
                    out.writeRESPArrayHeader(4)
                    out.writeRESPInteger(d.allowed || shadow ? 1 : 0)
                    out.writeRESPDouble(d.remaining.units)
                    out.writeRESPInteger(Int(d.reset))
                    out.writeRESPInteger(d.near ? 1 : 0)
                }
            },
            Command("rl.budget", arity: 2, summary: "RL.BUDGET key: [spent, budget, remaining, reset_ms, period, near] or nil") { ctx, out throws(CommandError) in
                let key = try ctx.nextName()
                let now = ctx.now
                return ctx.reply(limits.budget(key, now: now, on: ctx.eventLoop), into: &out) { window, out in
                    guard let w = window else { return out.writeRESPNullArray() }
                    out.writeRESPArrayHeader(6)
                    out.writeRESPDouble(w.spent.units)
                    out.writeRESPDouble(w.budget.units)
                    out.writeRESPDouble(w.remaining.units)
                    out.writeRESPInteger(Int(w.endsAt - now))
                    out.writeRESPBulk(w.period.description)
                    out.writeRESPInteger(w.isNear(w.nearFraction) ? 1 : 0)
                }
            },
        ]
    }

    // MARK: Replies

    /// remaining_requests, remaining_tokens, retry_after_ms, reset_ms: shared by TAKE and PEEK.
    static func writeNumbers(_ d: LimitDecision, into out: inout RESPWriter) {
        out.writeRESPInteger(Int(d.remainingRequests))
        out.writeRESPInteger(Int(d.remainingTokens))
        out.writeRESPInteger(Int(d.retryAfter))
        out.writeRESPInteger(Int(d.reset))
    }

    static func writeFailure<T>(_ result: Result<T, LimitError>, _ out: inout RESPWriter) {
        guard case .failure(let error) = result else { return }
        out.writeRESPError(Self.error(error).line)
    }

    static func error(_ error: LimitError) -> CommandError {
        switch error {
        case .exceedsBurst(let asked, let burst):
            return CommandError("asking for \(asked) but the bucket holds at most \(burst): it can never be allowed")
        case .tooManyKeys(let limit):
            return CommandError("too many rate-limit keys (at most \(limit) live; full buckets are reclaimed)")
        case .unknownReservation:
            return unknownReservation
        case .tooManyReservations(let limit):
            return CommandError("too many open reservations (at most \(limit) per shard); settle them, or wait for them to expire")
        case .tooManySlots(let limit):
            return CommandError("too many concurrency slots held (at most \(limit) per shard); release them, or wait for them to expire")
        }
    }

    // MARK: Arguments

    /// An optional last option `KEYWORD ms` (at least 1 ms), e.g. `TTL 5000`.
    /// Largest RL.ACQUIRE PRIORITY either way (aging adds a level a second: a million is
    /// eleven days of waiting).
    static let maxPriority = 1_000_000

    /// Longest RL.PENALIZE hold and RL.SYNC reset: a provider asking for more than a day is
    /// better told by an operator.
    static let maxHold = 86_400_000

    /// A provider's remaining count: 0 to ``TokenBucket/maxTokens``, or -1 for "not reported".
    static func providerCount(_ ctx: inout CommandContext, _ what: String) throws(CommandError) -> Int64? {
        guard let n = try ctx.next().decimalValue, n >= -1, Int64(n) <= TokenBucket.maxTokens else {
            throw CommandError("\(what) must be -1 (not reported) or 0 to \(TokenBucket.maxTokens)")
        }
        return n < 0 ? nil : Int64(n)
    }

    static let spendOptions: [StaticString] = ["BUDGET", "PERIOD", "NEAR", "POLICY", "DRYRUN"]

    static func badMoney(_ what: String) -> CommandError {
        CommandError("\(what) must be a non-negative number of at most 1e12")
    }

    /// `day`, `week`, `month` (UTC calendar), or a rolling window in ms.
    static func budgetPeriod(_ word: ByteBuffer) throws(CommandError) -> BudgetPeriod {
        if word.isKeyword("DAY") { return .day }
        if word.isKeyword("WEEK") { return .week }
        if word.isKeyword("MONTH") { return .month }
        guard let ms = word.decimalValue, ms >= 1, Int64(ms) <= TokenBucket.maxTokens else {
            throw CommandError("PERIOD must be day, week, month or 1 to \(TokenBucket.maxTokens) ms")
        }
        return .rolling(milliseconds: Int64(ms))
    }

    /// `rpm tpm`, or `POLICY name` (a policy of the config file); with the policy's name.
    static func limitSpec(_ ctx: inout CommandContext, _ policies: PolicyBook) throws(CommandError) -> (LimitSpec, String?) {
        let first = try ctx.next()
        if first.isKeyword("POLICY") {
            let name = try ctx.next().text
            guard let spec = policies.limit(named: name) else { throw noPolicy("rate-limit", name) }
            return (spec, name)
        }
        guard let rpm = first.decimalValue else { throw CommandError.notInteger }
        guard rpm >= 0, Int64(rpm) <= TokenBucket.maxTokens else { throw CommandError("rpm must be between 0 and \(TokenBucket.maxTokens)") }
        let tpm = try amount(&ctx, "tpm")
        return (LimitSpec(requestsPerMinute: Int64(rpm), tokensPerMinute: tpm), nil)
    }

    static func noPolicy(_ kind: String, _ name: String) -> CommandError {
        CommandError("no \(kind) policy named '\(name.prefix(200))' (policies come from the --config file)")
    }

    static func burst(_ option: ByteBuffer, _ ctx: inout CommandContext, _ spec: inout LimitSpec) throws(CommandError) {
        guard option.isKeyword("BURST") else { throw CommandError.syntax }
        spec.requestBurst = try amount(&ctx, "BURST")
        spec.tokenBurst = try amount(&ctx, "BURST")
    }

    /// A whole number from 0 to ``TokenBucket/maxTokens``: every rate, size and amount of the
    /// buckets is one, so their arithmetic stays exact (and below 2⁵³ for the Lua twin).
    static func amount(_ ctx: inout CommandContext, _ what: String) throws(CommandError) -> Int64 {
        guard ctx.hasMore else { throw CommandError.syntax }
        let n = try ctx.nextInteger()
        guard n >= 0, Int64(n) <= TokenBucket.maxTokens else { throw CommandError("\(what) must be between 0 and \(TokenBucket.maxTokens)") }
        return Int64(n)
    }
}
