import NIOCore
import SluiceDomain
import SluiceProtocol

/// CB.ALLOW, CB.REPORT, CB.STATE, CB.FORCE, CB.CONFIG: circuit breakers per upstream name.
enum BreakerCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let registry = env.breakers
        return [
            Command("cb.allow", arity: 2, summary: "CB.ALLOW name: [allowed, state, ticket|nil, retry_after_ms]") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                let p = try breaker(registry, name) { $0.allow(now: ctx.now) }
                out.writeRESPArrayHeader(4)
                out.writeRESPInteger(p.allowed ? 1 : 0)
                out.writeRESPBulk(p.state.rawValue)
                if let t = p.ticket { out.writeRESPBulk(String(t)) } else { out.writeRESPNull() }
                out.writeRESPInteger(Int(p.retryAfter))
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
                let s = try breaker(registry, name) { $0.snapshot(now: ctx.now) }
                RESPValue.map([
                    .bulk("state"), .bulk(s.state.rawValue),
                    .bulk("forced"), s.forced.map { .bulk($0.rawValue) } ?? .null,
                    .bulk("calls"), .integer(s.calls),
                    .bulk("failures"), .integer(s.failures),
                    .bulk("slow"), .integer(s.slow),
                    .bulk("next_transition_ms"), .integer(Int(s.nextTransition)),
                    .bulk("generation"), .integer(Int(s.generation)),
                    .bulk("probes_issued"), .integer(s.probesIssued),
                ]).encode(into: &out)
                return .done
            },
            Command("cb.force", arity: 3, summary: "CB.FORCE name open|closed|auto: +OK") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                let word = try ctx.next()
                let pin: CircuitBreaker.Forced?
                if word.isKeyword("open") { pin = .open } else if word.isKeyword("closed") { pin = .closed } else if word.isKeyword("auto") { pin = nil } else {
                    throw CommandError("CB.FORCE takes open, closed or auto")
                }
                try breaker(registry, name) { $0.force(pin, now: ctx.now) }
                out.writeRESPOK()
                return .done
            },
            Command("cb.config", arity: -2, summary: "CB.CONFIG name [WINDOW n] [MIN-CALLS n] [FAILURE-RATE x] [SLOW-MS ms] [SLOW-RATE x] [OPEN-MS ms] [PROBES n]: the policy in force") { ctx, out throws(CommandError) in
                let name = try ctx.next().text
                var changes: [(inout BreakerPolicy) -> Void] = []
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard ctx.hasMore else { throw CommandError.syntax }
                    let value = try ctx.next()
                    if option.isKeyword("WINDOW") || option.isKeyword("MIN-CALLS") || option.isKeyword("PROBES") {
                        guard let n = value.decimalValue, n >= 1, n <= 10_000 else { throw CommandError("\(option.text.uppercased()) must be 1 to 10000") }
                        if option.isKeyword("WINDOW") { changes.append { $0.window = n } }
                        else if option.isKeyword("MIN-CALLS") { changes.append { $0.minimumCalls = n } }
                        else { changes.append { $0.probes = n } }
                    } else if option.isKeyword("FAILURE-RATE") || option.isKeyword("SLOW-RATE") {
                        guard let x = value.doubleValue, x > 0, x <= 1 else { throw CommandError("\(option.text.uppercased()) must be above 0 and at most 1") }
                        if option.isKeyword("FAILURE-RATE") { changes.append { $0.failureRate = x } } else { changes.append { $0.slowCallRate = x } }
                    } else if option.isKeyword("SLOW-MS") || option.isKeyword("OPEN-MS") {
                        guard let n = value.decimalValue, n >= 1 else { throw CommandError("\(option.text.uppercased()) must be a positive number of ms") }
                        if option.isKeyword("SLOW-MS") { changes.append { $0.slowCallMilliseconds = Int64(n) } } else { changes.append { $0.openMilliseconds = Int64(n) } }
                    } else {
                        throw CommandError.syntax
                    }
                }
                let policy = try breaker(registry, name) { b -> BreakerPolicy in
                    for change in changes { change(&b.policy) }
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

    static func breaker<R>(_ registry: BreakerRegistry, _ name: String, _ body: (inout CircuitBreaker) -> R) throws(CommandError) -> R {
        guard let r = registry.with(name, body) else {
            throw CommandError("too many circuit breakers (at most \(registry.maxBreakers))")
        }
        return r
    }
}
