import NIOCore
import SluiceDomain
import SluiceProtocol

/// GET, SET, DEL, EXISTS, TTL, PTTL shaped like Redis's, so unmodified clients' get/set work.
enum ExactCacheCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let cache = env.cache
        return [
            Command("get", arity: 2, summary: "GET key: the value, or nil") { ctx, out throws(CommandError) in
                switch cache.read(try ctx.next(), now: ctx.now, on: ctx.eventLoop) {
                case .hit(let value, _, _):
                    out.writeRESPBulk(bytes: value.bytes)
                    return .done
                case .miss:
                    out.writeRESPNull()
                    return .done
                case .fetching(let future):
                    return .later(future.map { found in .bulkString(found?.0) })
                }
            },
            Command("set", arity: -3, summary: "SET key value [EX s | PX ms] [NX | XX]: +OK, or nil when NX/XX refuse") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                var expiresAt: Int64 = 0
                var condition = TieredCache.Condition.always
                while ctx.hasMore {
                    let option = try ctx.next()
                    if option.isKeyword("EX") || option.isKeyword("PX") {
                        guard expiresAt == 0 else { throw CommandError.syntax }
                        guard ctx.hasMore else { throw CommandError.syntax }
                        let amount = try ctx.nextInteger()
                        expiresAt = try expiry(amount, unitMilliseconds: option.isKeyword("EX") ? 1000 : 1, now: ctx.now, command: "set")
                    } else if option.isKeyword("NX") || option.isKeyword("XX") {
                        guard condition == .always else { throw CommandError.syntax }
                        condition = option.isKeyword("NX") ? .ifAbsent : .ifPresent
                    } else {
                        throw CommandError.syntax
                    }
                }
                let meta = EntryMeta(createdAt: ctx.now, expiresAt: expiresAt)
                if cache.shared != nil {
                    return .later(cache.writeShared(key, value: value, meta: meta, condition: condition, now: ctx.now, on: ctx.eventLoop)
                        .map { $0 ? .simpleString("OK") : .null })
                }
                if cache.write(key, value: value, meta: meta, condition: condition, now: ctx.now) {
                    out.writeRESPOK()
                } else {
                    out.writeRESPNull()
                }
                return .done
            },
            Command("del", arity: -2, summary: "DEL key [key ...]: how many existed") { ctx, out throws(CommandError) in
                if cache.shared != nil {
                    return .later(cache.deleteShared(Array(ctx.arguments), now: ctx.now, on: ctx.eventLoop).map { .integer($0) })
                }
                var removed = 0
                while let key = ctx.arguments.next() {
                    if cache.delete(key, now: ctx.now) { removed += 1 }
                }
                out.writeRESPInteger(removed)
                return .done
            },
            Command("exists", arity: -2, summary: "EXISTS key [key ...]: how many exist (repeats count again)") { ctx, out throws(CommandError) in
                if cache.shared != nil {
                    return .later(cache.existsShared(Array(ctx.arguments), now: ctx.now, on: ctx.eventLoop).map { .integer($0) })
                }
                var found = 0
                while let key = ctx.arguments.next() {
                    if cache.expiry(key, now: ctx.now) != nil { found += 1 }
                }
                out.writeRESPInteger(found)
                return .done
            },
            Command("ttl", arity: 2, summary: "TTL key: seconds left, -1 no expiry, -2 no key") { ctx, out throws(CommandError) in
                if cache.shared != nil {
                    return .later(cache.pttlShared(try ctx.next(), now: ctx.now, on: ctx.eventLoop).map { .integer($0 < 0 ? $0 : ($0 + 500) / 1000) })
                }
                out.writeRESPInteger(timeToLive(cache.expiry(try ctx.next(), now: ctx.now), now: ctx.now, unit: 1000))
                return .done
            },
            Command("pttl", arity: 2, summary: "PTTL key: milliseconds left, -1 no expiry, -2 no key") { ctx, out throws(CommandError) in
                if cache.shared != nil {
                    return .later(cache.pttlShared(try ctx.next(), now: ctx.now, on: ctx.eventLoop).map { .integer($0) })
                }
                out.writeRESPInteger(timeToLive(cache.expiry(try ctx.next(), now: ctx.now), now: ctx.now, unit: 1))
                return .done
            },
        ]
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
    static func timeToLive(_ expiresAt: Int64?, now: Int64, unit: Int64) -> Int {
        guard let expiresAt else { return -2 }
        if expiresAt == 0 { return -1 }
        let left = max(expiresAt - now, 0)
        return Int((left + unit / 2) / unit)
    }
}
