import NIOCore
import SluiceDomain
import SluiceProtocol

/// Rate limits decided in Redis for every Sluice instance at once (shared mode). Each
/// operation is one Lua script, so a check and its charge are atomic across instances, with the
/// same exact integer arithmetic as ``TokenBucket`` and Redis's clock (TIME) as the one clock.
///
/// Keys: `sluice:rl:<key>` (hash: levels r/t in 1/60000 token, at, limits), expiring once the
/// bucket would be full again so idle keys vanish; `sluice:rv:<id>` per open reservation.
/// (For Redis Cluster, a reservation names its bucket inside the script: one key per call.)
public final class SharedRateLimiter: Sendable {
    public let client: RedisClient
    public let reservationTTL: Int64

    public init(client: RedisClient, reservationTTL: Int64) {
        self.client = client
        self.reservationTTL = reservationTTL
    }

    static func bucketKey(_ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer(string: "sluice:rl:")
        b.writeImmutableBuffer(key)
        return b
    }

    static func number(_ n: Int64) -> ByteBuffer { ByteBuffer(string: String(n)) }

    /// RL.TAKE; with `reservation` also opens a reservation (RL.RESERVE).
    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, reservation: UInt64? = nil,
                     on eventLoop: any EventLoop) -> EventLoopFuture<Result<LimitDecision, LimitError>> {
        if spec.requestsPerMinute > 0 && spec.requestBurst < 1 {
            return eventLoop.makeSucceededFuture(.failure(.exceedsBurst(asked: 1, burst: spec.requestBurst)))
        }
        if spec.tokensPerMinute > 0 && tokens > spec.tokenBurst {
            return eventLoop.makeSucceededFuture(.failure(.exceedsBurst(asked: tokens, burst: spec.tokenBurst)))
        }
        var args = [spec.requestsPerMinute, spec.tokensPerMinute, spec.requestBurst, spec.tokenBurst, tokens].map(Self.number)
        if let reservation {
            args += [ByteBuffer(string: "sluice:rv:\(reservation)"), Self.number(reservationTTL)]
        }
        return Self.take.run(client, keys: [Self.bucketKey(key)], arguments: args, on: eventLoop).flatMapThrowing { reply in
            let n = try Self.integers(reply, count: 5)
            return .success(LimitDecision(allowed: n[0] == 1, remainingRequests: n[1], remainingTokens: n[2], retryAfter: n[3], reset: n[4]))
        }
    }

    public func settle(id: UInt64, actual: Int64, on eventLoop: any EventLoop) -> EventLoopFuture<Result<(delta: Int64, remainingTokens: Int64), LimitError>> {
        Self.settle.run(client, keys: [ByteBuffer(string: "sluice:rv:\(id)")], arguments: [Self.number(actual)], on: eventLoop)
            .flatMapThrowing { reply in
                if case .array(let items?) = reply, items.isEmpty { return .failure(.unknownReservation) }
                let n = try Self.integers(reply, count: 2)
                return .success((n[0], n[1]))
            }
    }

    /// nil: no bucket.
    public func peek(_ key: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<(LimitDecision, LimitSpec)?> {
        Self.peek.run(client, keys: [Self.bucketKey(key)], arguments: [], on: eventLoop).flatMapThrowing { reply in
            if case .array(let items?) = reply, items.isEmpty { return nil }
            let n = try Self.integers(reply, count: 6)
            return (LimitDecision(allowed: n[2] == 0, remainingRequests: n[0], remainingTokens: n[1], retryAfter: n[2], reset: n[3]),
                    LimitSpec(requestsPerMinute: n[4], tokensPerMinute: n[5]))
        }
    }

    struct UnexpectedReply: Error, CustomStringConvertible {
        let reply: RESPValue
        var description: String { "unexpected reply from Redis: \(reply)" }
    }

    static func integers(_ reply: RESPValue, count: Int) throws -> [Int64] {
        guard case .array(let items?) = reply, items.count == count else { throw UnexpectedReply(reply: reply) }
        return try items.map { item in
            guard case .integer(let n) = item else { throw UnexpectedReply(reply: reply) }
            return Int64(n)
        }
    }

    // MARK: Scripts

    /// Shared by the scripts: refill a bucket hash to now.
    static let prelude = """
        local unit = 60000
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local function wait(level, need, rate)
          if level >= need then return 0 end
          if rate <= 0 then return -1 end
          return math.ceil((need - level) / rate)
        end
        local function untilfull(level, cap, rate)
          if rate <= 0 or level >= cap * unit then return 0 end
          return math.ceil((cap * unit - level) / rate)
        end
        local function refill(level, cap, rate, elapsed)
          if rate <= 0 or elapsed <= 0 or level >= cap * unit then return math.min(level, cap * unit) end
          return math.min(cap * unit, level + elapsed * rate)
        end
        local function remaining(level, rate)
          if rate <= 0 then return -1 end
          if level <= 0 then return 0 end
          return math.floor(level / unit)
        end
        """

    static let take = RedisScript(prelude + "\n" + """
        local rpm, tpm, rb, tb, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
        local s = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
        local at = tonumber(s[3]) or now
        local r = refill(tonumber(s[1]) or rb * unit, rb, rpm, now - at)
        local tk = refill(tonumber(s[2]) or tb * unit, tb, tpm, now - at)
        local wr, wt = 0, 0
        if rpm > 0 then wr = wait(r, unit, rpm) end
        if tpm > 0 then wt = wait(tk, n * unit, tpm) end
        local allowed = 0
        if wr == 0 and wt == 0 then
          allowed = 1
          if rpm > 0 then r = r - unit end
          if tpm > 0 then tk = tk - n * unit end
        end
        local reset = math.max(untilfull(r, rb, rpm), untilfull(tk, tb, tpm))
        redis.call('HSET', KEYS[1], 'r', r, 't', tk, 'at', now, 'rpm', rpm, 'tpm', tpm, 'rb', rb, 'tb', tb)
        local ttl = math.max(reset, 1000)
        if allowed == 1 and ARGV[6] then
          redis.call('HSET', ARGV[6], 'k', KEYS[1], 'e', n)
          redis.call('PEXPIRE', ARGV[6], tonumber(ARGV[7]))
          ttl = math.max(ttl, tonumber(ARGV[7]) + 1000)
        end
        if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
        local retry = 0
        if allowed == 0 then retry = math.max(wr, wt) end
        return {allowed, remaining(r, rpm), remaining(tk, tpm), retry, reset}
        """)

    static let settle = RedisScript(prelude + "\n" + """
        local rv = redis.call('HMGET', KEYS[1], 'k', 'e')
        if not rv[1] then return {} end
        redis.call('DEL', KEYS[1])
        local key, estimate, actual = rv[1], tonumber(rv[2]), tonumber(ARGV[1])
        local s = redis.call('HMGET', key, 't', 'at', 'tpm', 'tb')
        local tpm, tb = tonumber(s[3]) or 0, tonumber(s[4]) or 0
        local delta = actual - estimate
        if tpm <= 0 then return {delta, -1} end
        local tk = refill(tonumber(s[1]) or tb * unit, tb, tpm, now - (tonumber(s[2]) or now))
        if delta > 0 then tk = tk - delta * unit else tk = math.min(tb * unit, tk - delta * unit) end
        redis.call('HSET', key, 't', tk, 'at', now)
        return {delta, remaining(tk, tpm)}
        """)

    static let peek = RedisScript(prelude + "\n" + """
        local s = redis.call('HMGET', KEYS[1], 'r', 't', 'at', 'rpm', 'tpm', 'rb', 'tb')
        if not s[3] then return {} end
        local rpm, tpm, rb, tb = tonumber(s[4]), tonumber(s[5]), tonumber(s[6]), tonumber(s[7])
        local el = now - tonumber(s[3])
        local r = refill(tonumber(s[1]), rb, rpm, el)
        local tk = refill(tonumber(s[2]), tb, tpm, el)
        local wr, wt = 0, 0
        if rpm > 0 then wr = wait(r, unit, rpm) end
        if tpm > 0 then wt = wait(tk, 0, tpm) end
        return {remaining(r, rpm), remaining(tk, tpm), math.max(wr, wt), math.max(untilfull(r, rb, rpm), untilfull(tk, tb, tpm)), rpm, tpm}
        """)
}
