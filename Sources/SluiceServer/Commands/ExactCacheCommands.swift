import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// GET, SET, DEL, EXISTS, TTL, PTTL shaped like Redis's, so unmodified clients' get/set work.
struct ExactCacheCommands: CommandGroup {
    let cache: any ExactCache

    var commands: [Command] {
        let cache = cache
        return [
            Command("get", arity: 2, summary: "GET key: the value, or nil") { ctx, out throws(CommandError) in
                ctx.reply(cache.read(try ctx.next(), lease: 0, now: ctx.time, on: ctx.eventLoop), into: &out, Self.writeValue)
            },
            Command("set", arity: -3, summary: "SET key value [EX s | PX ms] [NX | XX]: +OK, or nil when NX/XX refuse") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                var expiresAt: Int64 = 0
                var condition = WriteCondition.always
                while ctx.hasMore {
                    let option = try ctx.next()
                    if option.isKeyword("EX") || option.isKeyword("PX") {
                        guard expiresAt == 0 else { throw CommandError.syntax }
                        guard ctx.hasMore else { throw CommandError.syntax }
                        let amount = try ctx.nextInteger()
                        expiresAt = try Self.expiry(amount, unitMilliseconds: option.isKeyword("EX") ? 1000 : 1, now: ctx.now, command: "set")
                    } else if option.isKeyword("NX") || option.isKeyword("XX") {
                        guard condition == .always else { throw CommandError.syntax }
                        condition = option.isKeyword("NX") ? .ifAbsent : .ifPresent
                    } else {
                        throw CommandError.syntax
                    }
                }
                let meta = EntryMeta(createdAt: ctx.now, expiresAt: expiresAt)
                return ctx.reply(cache.write(key, value: value, meta: meta, condition: condition, now: ctx.time, on: ctx.eventLoop), into: &out) { written, out in
                    switch written {
                    case .stored: out.writeRESPOK()
                    case .notStored, .leaseRefused: out.writeRESPNull()
                    case .failed(let failure): out.writeRESPError(CommandError.notStored(failure).line)
                    }
                }
            },
            Command("del", arity: -2, summary: "DEL key [key ...]: how many existed") { ctx, out throws(CommandError) in
                ctx.reply(cache.delete(Array(ctx.arguments), now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
                    switch result {
                    case .success(let n): out.writeRESPInteger(n)
                    case .failure(let failure): out.writeRESPError(CommandError.notStored(failure).line)
                    }
                }
            },
            Command("exists", arity: -2, summary: "EXISTS key [key ...]: how many exist (repeats count again)") { ctx, out throws(CommandError) in
                ctx.reply(cache.exists(Array(ctx.arguments), now: ctx.time, on: ctx.eventLoop), into: &out, Self.writeCount)
            },
            Command("ttl", arity: 2, summary: "TTL key: seconds left, -1 no expiry, -2 no key") { ctx, out throws(CommandError) in
                ctx.reply(cache.timeToLive(try ctx.next(), now: ctx.time, on: ctx.eventLoop), into: &out) { ttl, out in
                    out.writeRESPInteger(Self.timeToLive(ttl, unit: 1000))
                }
            },
            Command("pttl", arity: 2, summary: "PTTL key: milliseconds left, -1 no expiry, -2 no key") { ctx, out throws(CommandError) in
                ctx.reply(cache.timeToLive(try ctx.next(), now: ctx.time, on: ctx.eventLoop), into: &out) { ttl, out in
                    out.writeRESPInteger(Self.timeToLive(ttl, unit: 1))
                }
            },
        ]
    }

    @inlinable
    static func writeValue(_ read: CacheRead, _ out: inout RESPWriter) {
        switch read {
        case .hit(let value, _, _): out.writeRESPBulk(bytes: value.bytes)
        case .miss: out.writeRESPNull()
        }
    }

    static func writeCount(_ n: Int, _ out: inout RESPWriter) {
        out.writeRESPInteger(n)
    }

    /// Absolute expiry for a relative TTL; Redis's error for zero, negative or overflowing ones.
    static func expiry(_ amount: Int, unitMilliseconds: Int64, now: Int64, command: String) throws(CommandError) -> Int64 {
        let (ms, overflow) = Int64(amount).multipliedReportingOverflow(by: unitMilliseconds)
        guard amount > 0, !overflow, ms <= Int64.max - now else {
            throw CommandError("invalid expire time in '\(command)' command")
        }
        return now + ms
    }

    /// Redis's TTL reply: -2 absent, -1 no expiry, else time left rounded to the unit.
    static func timeToLive(_ ttl: TimeToLive, unit: Int64) -> Int {
        switch ttl {
        case .absent: return -2
        case .forever: return -1
        case .milliseconds(let left): return Int((max(left, 0) + unit / 2) / unit)
        }
    }
}
