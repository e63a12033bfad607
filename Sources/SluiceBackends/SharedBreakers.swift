import NIOCore
import SluiceDomain
import SluiceProtocol

/// Circuit breakers kept in Redis (shared mode): one hash `sluice:cb:<name>` per breaker, every
/// transition inside one Lua script, so a breaker that opens through one instance is open for
/// all of them at their next call, with no read-then-write race. Same rules, defaults and
/// tickets as ``CircuitBreaker``; Redis's clock (TIME) is the one clock.
public final class SharedBreakers: Sendable {
    public let client: RedisClient
    public let defaults: BreakerPolicy

    public init(client: RedisClient, defaults: BreakerPolicy = BreakerPolicy()) {
        self.client = client
        self.defaults = defaults
    }

    static func key(_ name: String) -> ByteBuffer { ByteBuffer(string: "sluice:cb:" + name) }

    var defaultArguments: [ByteBuffer] {
        [String(defaults.window), String(defaults.minimumCalls), String(defaults.failureRate), String(defaults.slowCallMilliseconds),
         String(defaults.slowCallRate), String(defaults.openMilliseconds), String(defaults.probes)].map { ByteBuffer(string: $0) }
    }

    func run(_ op: String, _ name: String, _ extra: [String], on eventLoop: any EventLoop) -> EventLoopFuture<[RESPValue]> {
        Self.script.run(client, keys: [Self.key(name)],
                        arguments: [ByteBuffer(string: op)] + defaultArguments + extra.map { ByteBuffer(string: $0) },
                        on: eventLoop).flatMapThrowing { reply in
            guard case .array(let items?) = reply else { throw SharedRateLimiter.UnexpectedReply(reply: reply) }
            return items
        }
    }

    /// [allowed, state, ticket (0 = none), retry_after_ms]
    public func allow(_ name: String, on eventLoop: any EventLoop) -> EventLoopFuture<CircuitBreaker.Permission> {
        run("allow", name, [], on: eventLoop).flatMapThrowing { items in
            guard items.count == 4, case .integer(let allowed) = items[0], let state = items[1].string.flatMap(CircuitBreaker.State.init),
                  case .integer(let ticket) = items[2], case .integer(let retry) = items[3] else {
                throw SharedRateLimiter.UnexpectedReply(reply: .array(items))
            }
            return CircuitBreaker.Permission(allowed: allowed == 1, state: state, ticket: ticket == 0 ? nil : UInt64(ticket), retryAfter: Int64(retry))
        }
    }

    /// (counted, state)
    public func report(_ name: String, ticket: UInt64, _ outcome: CircuitBreaker.Outcome, latency: Int64?, on eventLoop: any EventLoop) -> EventLoopFuture<(Bool, CircuitBreaker.State)> {
        run("report", name, [String(ticket), outcome == .failure ? "fail" : "ok", String(latency ?? 0)], on: eventLoop).flatMapThrowing { items in
            guard items.count == 2, case .integer(let counted) = items[0], let state = items[1].string.flatMap(CircuitBreaker.State.init) else {
                throw SharedRateLimiter.UnexpectedReply(reply: .array(items))
            }
            return (counted == 1, state)
        }
    }

    public func force(_ name: String, _ pin: CircuitBreaker.Forced?, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        run("force", name, [pin?.rawValue ?? "auto"], on: eventLoop).map { _ in }
    }

    /// The fields of CB.STATE as a map (alternating names and values).
    public func state(_ name: String, on eventLoop: any EventLoop) -> EventLoopFuture<[RESPValue]> {
        run("state", name, [], on: eventLoop)
    }

    /// Applies (field, value) pairs (window, min_calls, failure_rate, slow_ms, slow_rate, open_ms,
    /// probes); returns the policy in force as a map.
    public func configure(_ name: String, _ changes: [(String, String)], on eventLoop: any EventLoop) -> EventLoopFuture<[RESPValue]> {
        run("config", name, changes.flatMap { [$0.0, $0.1] }, on: eventLoop)
    }

    static let script = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local k = KEYS[1]
        local op = ARGV[1]
        local raw = redis.call('HGETALL', k)
        local h = {}
        for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
        local function num(f, d) return tonumber(h[f]) or tonumber(d) end
        local window, mincalls, frate = num('window', ARGV[2]), num('min_calls', ARGV[3]), num('failure_rate', ARGV[4])
        local slowms, srate, openms, probes = num('slow_ms', ARGV[5]), num('slow_rate', ARGV[6]), num('open_ms', ARGV[7]), num('probes', ARGV[8])
        local st, gen, forced = h['state'] or 'closed', num('gen', 1), h['forced'] or ''
        local win, openedAt, halfSince = h['win'] or '', num('opened_at', 0), num('half_since', 0)
        local issued, succ, tc = num('issued', 0), num('succ', 0), num('tc', 0)
        local function transition(to)
          st = to; gen = gen + 1; tc = 0; win = ''; issued = 0; succ = 0
          if to == 'open' then openedAt = now end
          if to == 'half_open' then halfSince = now end
        end
        local function advance()
          if forced ~= '' then return end
          if st == 'open' and now >= openedAt + openms then transition('half_open')
          elseif st == 'half_open' and issued >= probes and now >= halfSince + openms then issued = succ; halfSince = now end
        end
        local function count(c)
          local n = 0
          for i = 1, #win do local b = tonumber(string.sub(win, i, i)); if (c == 1 and b % 2 == 1) or (c == 2 and b >= 2) then n = n + 1 end end
          return n
        end
        local function save()
          redis.call('HSET', k, 'state', st, 'gen', gen, 'forced', forced, 'win', win, 'opened_at', openedAt,
            'half_since', halfSince, 'issued', issued, 'succ', succ, 'tc', tc)
        end
        local function ticket() tc = tc + 1; return gen * 16777216 + tc end
        advance()
        local shown = st
        if forced ~= '' then shown = forced end
        if op == 'allow' then
          local r
          if forced == 'open' then r = {0, 'open', 0, -1}
          elseif forced == 'closed' or st == 'closed' then r = {1, shown, ticket(), 0}
          elseif st == 'open' then r = {0, 'open', 0, openedAt + openms - now}
          elseif issued < probes then issued = issued + 1; r = {1, 'half_open', ticket(), 0}
          else r = {0, 'half_open', 0, math.max(halfSince + openms - now, 1)} end
          save()
          return r
        elseif op == 'report' then
          local tk, outcome, latency = tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[11])
          if forced ~= '' or math.floor(tk / 16777216) ~= gen then save(); return {0, shown} end
          local fail = outcome == 'fail'
          local slow = latency > slowms
          if st == 'closed' then
            local c = 0
            if fail then c = c + 1 end
            if slow then c = c + 2 end
            win = string.sub(win .. tostring(c), -window)
            local n = #win
            if n >= mincalls and (count(1) / n >= frate or count(2) / n >= srate) then transition('open') end
          elseif st == 'half_open' then
            if fail or slow then transition('open') else
              succ = succ + 1
              if succ >= probes then transition('closed') end
            end
          else
            save(); return {0, st}
          end
          save()
          return {1, st}
        elseif op == 'force' then
          if ARGV[9] == 'auto' then forced = '' else forced = ARGV[9] end
          if forced == 'open' then transition('open') else transition('closed') end
          save()
          return {}
        elseif op == 'config' then
          for i = 9, #ARGV, 2 do redis.call('HSET', k, ARGV[i], ARGV[i + 1]); h[ARGV[i]] = ARGV[i + 1] end
          save()
          return {'window', num('window', ARGV[2]), 'min_calls', num('min_calls', ARGV[3]), 'failure_rate', tostring(num('failure_rate', ARGV[4])),
            'slow_ms', num('slow_ms', ARGV[5]), 'slow_rate', tostring(num('slow_rate', ARGV[6])), 'open_ms', num('open_ms', ARGV[7]),
            'probes', num('probes', ARGV[8])}
        else
          save()
          local nextms = 0
          if st == 'open' and forced == '' then nextms = math.max(openedAt + openms - now, 0) end
          return {'state', shown, 'forced', forced, 'calls', #win, 'failures', count(1), 'slow', count(2),
            'next_transition_ms', nextms, 'generation', gen, 'probes_issued', issued}
        end
        """)
}
