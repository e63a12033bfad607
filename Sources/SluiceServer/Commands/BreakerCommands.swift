import NIOCore
import SluiceDomain
import SluiceProtocol

/// CB.ALLOW, CB.REPORT, CB.STATE, CB.FORCE, CB.CONFIG: circuit breakers per upstream name.
enum BreakerCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let registry = env.breakers
        let shared = env.sharedBreakers
        return [
            Command("cb.allow", arity: 2, summary: "CB.ALLOW name: [allowed, state, ticket|nil, retry_after_ms]") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                if let shared {
                    let now = ctx.now
                    return .later(shared.allow(name, on: ctx.eventLoop).recover { _ in
                        fallback(env, registry.with(name) { $0.allow(now: now) }) ?? CircuitBreaker.Permission(allowed: false, state: .open, ticket: nil, retryAfter: 1000)
                    }.map(allowReply))
                }
                allowReply(try breaker(registry, name) { $0.allow(now: ctx.now) }).encode(into: &out)
                return .done
            },
            Command("cb.report", arity: -4, summary: "CB.REPORT name ticket ok|fail [latency_ms]: [counted 0/1, state]") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                guard let ticket = UInt64(try ctx.next().text) else { throw CommandError("ticket is not valid") }
                let word = try ctx.next()
                let outcome: CircuitBreaker.Outcome
                if word.isKeyword("ok") { outcome = .success } else if word.isKeyword("fail") { outcome = .failure } else {
                    throw CommandError("outcome must be ok or fail")
                }
                var latency: Int64?
                if ctx.hasMore {
                    let ms = try ctx.nextInteger()
                    guard ms >= 0 else { throw CommandError("latency_ms must not be negative") }
                    latency = Int64(ms)
                }
                guard !ctx.hasMore else { throw CommandError.syntax }
                if let shared {
                    let now = ctx.now, latency = latency
                    return .later(shared.report(name, ticket: ticket, outcome, latency: latency, on: ctx.eventLoop).recover { _ in
                        fallback(env, registry.with(name) { b in (b.report(ticket: ticket, outcome, latency: latency, now: now), b.snapshot(now: now).state) }) ?? (false, .open)
                    }.map { .array([.integer($0.0 ? 1 : 0), .bulk($0.1.rawValue)]) })
                }
                let (counted, state) = try breaker(registry, name) { b in
                    (b.report(ticket: ticket, outcome, latency: latency, now: ctx.now), b.snapshot(now: ctx.now).state)
                }
                out.writeRESPArrayHeader(2)
                out.writeRESPInteger(counted ? 1 : 0)
                out.writeRESPBulk(state.rawValue)
                return .done
            },
            Command("cb.state", arity: 2, summary: "CB.STATE name: map of state, forced, calls, failures, slow, next_transition_ms, generation, probes_issued") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                if let shared {
                    let now = ctx.now
                    return .later(shared.state(name, on: ctx.eventLoop).map { items -> RESPValue in
                        // "" means not forced; say it as nil, as the local reply does.
                        .map(items.map { $0 == .bulk("") ? .null : $0 })
                    }.recover { _ in
                        fallback(env, registry.with(name) { stateReply($0.snapshot(now: now)) }) ?? .null
                    })
                }
                stateReply(try breaker(registry, name) { $0.snapshot(now: ctx.now) }).encode(into: &out)
                return .done
            },
            Command("cb.force", arity: 3, summary: "CB.FORCE name open|closed|auto: +OK") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                let word = try ctx.next()
                let pin: CircuitBreaker.Forced?
                if word.isKeyword("open") { pin = .open } else if word.isKeyword("closed") { pin = .closed } else if word.isKeyword("auto") { pin = nil } else {
                    throw CommandError("CB.FORCE takes open, closed or auto")
                }
                if let shared {
                    let now = ctx.now
                    return .later(shared.force(name, pin, on: ctx.eventLoop).map { RESPValue.simpleString("OK") }.recover { _ in
                        _ = fallback(env, registry.with(name) { $0.force(pin, now: now) })
                        return .simpleString("OK")
                    })
                }
                try breaker(registry, name) { $0.force(pin, now: ctx.now) }
                out.writeRESPOK()
                return .done
            },
            Command("cb.config", arity: -2, summary: "CB.CONFIG name [WINDOW n] [MIN-CALLS n] [FAILURE-RATE x] [SLOW-MS ms] [SLOW-RATE x] [OPEN-MS ms] [PROBES n]: the policy in force") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                var changes: [(field: String, value: String)] = []
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard ctx.hasMore else { throw CommandError.syntax }
                    let value = try ctx.next()
                    let word = option.text.uppercased()
                    if option.isKeyword("WINDOW") || option.isKeyword("MIN-CALLS") || option.isKeyword("PROBES") {
                        guard let n = value.decimalValue, n >= 1, n <= 10_000 else { throw CommandError("\(word) must be 1 to 10000") }
                        changes.append((fieldNames[word]!, String(n)))
                    } else if option.isKeyword("FAILURE-RATE") || option.isKeyword("SLOW-RATE") {
                        guard let x = value.doubleValue, x > 0, x <= 1 else { throw CommandError("\(word) must be above 0 and at most 1") }
                        changes.append((fieldNames[word]!, String(x)))
                    } else if option.isKeyword("SLOW-MS") || option.isKeyword("OPEN-MS") {
                        guard let n = value.decimalValue, n >= 1 else { throw CommandError("\(word) must be a positive number of ms") }
                        changes.append((fieldNames[word]!, String(n)))
                    } else {
                        throw CommandError.syntax
                    }
                }
                if let shared {
                    return .later(shared.configure(name, changes, on: ctx.eventLoop).map { items in
                        .map(items.enumerated().map { i, v in
                            // The rates are doubles, as in the local reply.
                            if i % 2 == 1, case .bulkString(let b?) = v, let d = Double(String(buffer: b)) { return .double(d) }
                            return v
                        })
                    })
                }
                let policy = try breaker(registry, name) { b -> BreakerPolicy in
                    for (field, value) in changes { apply(field, value, to: &b.policy) }
                    return b.policy
                }
                RESPValue.map([
                    .bulk("window"), .integer(policy.window),
                    .bulk("min_calls"), .integer(policy.minimumCalls),
                    .bulk("failure_rate"), .double(policy.failureRate),
                    .bulk("slow_ms"), .integer(Int(policy.slowCallMilliseconds)),
                    .bulk("slow_rate"), .double(policy.slowCallRate),
                    .bulk("open_ms"), .integer(Int(policy.openMilliseconds)),
                    .bulk("probes"), .integer(policy.probes),
                ]).encode(into: &out)
                return .done
            },
        ]
    }

    /// CB.CONFIG option → the field name shared by the local policy and the Redis hash.
    static let fieldNames = ["WINDOW": "window", "MIN-CALLS": "min_calls", "PROBES": "probes", "FAILURE-RATE": "failure_rate",
                             "SLOW-RATE": "slow_rate", "SLOW-MS": "slow_ms", "OPEN-MS": "open_ms"]

    static func apply(_ field: String, _ value: String, to p: inout BreakerPolicy) {
        switch field {
        case "window": p.window = Int(value)!
        case "min_calls": p.minimumCalls = Int(value)!
        case "probes": p.probes = Int(value)!
        case "failure_rate": p.failureRate = Double(value)!
        case "slow_rate": p.slowCallRate = Double(value)!
        case "slow_ms": p.slowCallMilliseconds = Int64(value)!
        default: p.openMilliseconds = Int64(value)!
        }
    }

    /// Redis could not answer: this instance's own breaker decides.
    static func fallback<R>(_ env: ServerEnvironment, _ local: R?) -> R? {
        env.counters.limitFallbacks.add(1, ordering: .relaxed)
        return local
    }

    static func allowReply(_ p: CircuitBreaker.Permission) -> RESPValue {
        .array([.integer(p.allowed ? 1 : 0), .bulk(p.state.rawValue), p.ticket.map { .bulk(String($0)) } ?? .null, .integer(Int(p.retryAfter))])
    }

    static func stateReply(_ s: CircuitBreaker.Snapshot) -> RESPValue {
        .map([
            .bulk("state"), .bulk(s.state.rawValue),
            .bulk("forced"), s.forced.map { .bulk($0.rawValue) } ?? .null,
            .bulk("calls"), .integer(s.calls),
            .bulk("failures"), .integer(s.failures),
            .bulk("slow"), .integer(s.slow),
            .bulk("next_transition_ms"), .integer(Int(s.nextTransition)),
            .bulk("generation"), .integer(Int(s.generation)),
            .bulk("probes_issued"), .integer(s.probesIssued),
        ])
    }

    static func breaker<R>(_ registry: BreakerRegistry, _ name: String, _ body: (inout CircuitBreaker) -> R) throws(CommandError) -> R {
        guard let r = registry.with(name, body) else {
            throw CommandError("too many circuit breakers (at most \(registry.maxBreakers))")
        }
        return r
    }
}
