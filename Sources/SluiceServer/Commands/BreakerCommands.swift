import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// CB.ALLOW, CB.REPORT, CB.STATE, CB.FORCE, CB.CONFIG: circuit breakers per upstream name.
struct BreakerCommands: CommandGroup {
    let breakers: any Breakers

    var commands: [Command] {
        let breakers = breakers
        return [
            Command("cb.allow", arity: 2, summary: "CB.ALLOW name: [allowed, state, ticket|nil, retry_after_ms]") { ctx, out throws(CommandError) in
                ctx.reply(breakers.allow(try ctx.nextName("breaker name").text, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let p) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPArrayHeader(4)
                    out.writeRESPInteger(p.allowed ? 1 : 0)
                    out.writeRESPBulk(p.state.rawValue)
                    if let ticket = p.ticket { out.writeRESPBulk(String(ticket)) } else { out.writeRESPNull() }
                    out.writeRESPInteger(Int(p.retryAfter))
                }
            },
            Command("cb.report", arity: -4, summary: "CB.REPORT name ticket ok|fail [latency_ms]: [counted 0/1, state]") { ctx, out throws(CommandError) in
                let name = try ctx.nextName("breaker name").text
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
                return ctx.reply(breakers.report(name, ticket: ticket, outcome: outcome, latency: latency, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let r) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPArrayHeader(2)
                    out.writeRESPInteger(r.counted ? 1 : 0)
                    out.writeRESPBulk(r.state.rawValue)
                }
            },
            Command("cb.state", arity: 2, summary: "CB.STATE name: map of state, forced, calls, failures, slow, next_transition_ms, generation, probes_issued") { ctx, out throws(CommandError) in
                ctx.reply(breakers.state(try ctx.nextName("breaker name").text, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let s) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPMapHeader(8)
                    out.writeRESPBulk("state"); out.writeRESPBulk(s.state.rawValue)
                    out.writeRESPBulk("forced"); if let f = s.forced { out.writeRESPBulk(f.rawValue) } else { out.writeRESPNull() }
                    out.writeRESPBulk("calls"); out.writeRESPInteger(s.calls)
                    out.writeRESPBulk("failures"); out.writeRESPInteger(s.failures)
                    out.writeRESPBulk("slow"); out.writeRESPInteger(s.slow)
                    out.writeRESPBulk("next_transition_ms"); out.writeRESPInteger(Int(s.nextTransition))
                    out.writeRESPBulk("generation"); out.writeRESPInteger(Int(truncatingIfNeeded: s.generation))
                    out.writeRESPBulk("probes_issued"); out.writeRESPInteger(s.probesIssued)
                }
            },
            Command("cb.force", arity: 3, summary: "CB.FORCE name open|closed|auto: +OK") { ctx, out throws(CommandError) in
                let name = try ctx.nextName("breaker name").text
                let word = try ctx.next()
                let pin: CircuitBreaker.Forced?
                if word.isKeyword("open") { pin = .open } else if word.isKeyword("closed") { pin = .closed } else if word.isKeyword("auto") { pin = nil } else {
                    throw CommandError("CB.FORCE takes open, closed or auto")
                }
                return ctx.reply(breakers.force(name, pin, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPOK()
                }
            },
            Command("cb.config", arity: -2, summary: "CB.CONFIG name [WINDOW n] [MIN-CALLS n] [FAILURE-RATE x] [SLOW-MS ms] [SLOW-RATE x] [OPEN-MS ms] [PROBES n]: the policy in force") { ctx, out throws(CommandError) in
                let name = try ctx.nextName("breaker name").text
                var change = BreakerPolicyChange()
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    guard ctx.hasMore else { throw CommandError.syntax }
                    let value = try ctx.next()
                    let word = option.text.uppercased()
                    if option.isKeyword("WINDOW") || option.isKeyword("MIN-CALLS") || option.isKeyword("PROBES") {
                        let range = BreakerPolicy.countRange
                        guard let n = value.decimalValue, range.contains(n) else {
                            throw CommandError("\(word) must be \(range.lowerBound) to \(range.upperBound)")
                        }
                        if option.isKeyword("WINDOW") { change.window = n } else if option.isKeyword("PROBES") { change.probes = n } else { change.minimumCalls = n }
                    } else if option.isKeyword("FAILURE-RATE") || option.isKeyword("SLOW-RATE") {
                        guard let x = value.doubleValue, x > 0, x <= 1 else { throw CommandError("\(word) must be above 0 and at most 1") }
                        if option.isKeyword("FAILURE-RATE") { change.failureRate = x } else { change.slowCallRate = x }
                    } else if option.isKeyword("SLOW-MS") || option.isKeyword("OPEN-MS") {
                        let range = BreakerPolicy.millisecondsRange
                        guard let n = value.decimalValue, range.contains(Int64(n)) else {
                            throw CommandError("\(word) must be \(range.lowerBound) to \(range.upperBound) ms")
                        }
                        if option.isKeyword("SLOW-MS") { change.slowCallMilliseconds = Int64(n) } else { change.openMilliseconds = Int64(n) }
                    } else {
                        throw CommandError.syntax
                    }
                }
                return ctx.reply(breakers.configure(name, change, now: ctx.monotonic, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let policy) = result else { return Self.writeFailure(result, &out) }
                    out.writeRESPMapHeader(7)
                    out.writeRESPBulk("window"); out.writeRESPInteger(policy.window)
                    out.writeRESPBulk("min_calls"); out.writeRESPInteger(policy.minimumCalls)
                    out.writeRESPBulk("failure_rate"); out.writeRESPDouble(policy.failureRate)
                    out.writeRESPBulk("slow_ms"); out.writeRESPInteger(Int(policy.slowCallMilliseconds))
                    out.writeRESPBulk("slow_rate"); out.writeRESPDouble(policy.slowCallRate)
                    out.writeRESPBulk("open_ms"); out.writeRESPInteger(Int(policy.openMilliseconds))
                    out.writeRESPBulk("probes"); out.writeRESPInteger(policy.probes)
                }
            },
        ]
    }

    static func writeFailure<T>(_ result: Result<T, BreakerError>, _ out: inout RESPWriter) {
        guard case .failure(let error) = result else { return }
        switch error {
        case .tooManyBreakers(let limit): out.writeRESPError("ERR too many circuit breakers (at most \(limit))")
        }
    }
}
