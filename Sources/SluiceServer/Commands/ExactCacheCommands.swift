import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// GET, SET, DEL, EXISTS, TTL, PTTL shaped like Redis's, so unmodified clients' get/set work.
struct ExactCacheCommands: CommandGroup {
    let cache: any ExactCache
    let keys: any KeyOperations

    var commands: [Command] {
        let cache = cache, keys = keys
        return [
            Command("get", arity: 2, summary: "GET key: the value, or nil") { ctx, out throws(CommandError) in
                ctx.reply(cache.read(try ctx.next(), lease: 0, now: ctx.time, on: ctx.eventLoop), into: &out, Self.writeValue)
            },
            Command("set", arity: -3, summary: "SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]: +OK, nil when NX/XX refuse; with GET the old value") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                var expiresAt: Int64 = 0
                var keepTTL = false, returnOld = false
                var condition = WriteCondition.always
                // As Redis: the options' syntax first, then the expiry's value. An option may
                // repeat (the last value counts); two different expiry options may not.
                var expiry: (argument: ByteBuffer, unit: (ms: Int64, absolute: Bool))?
                while ctx.hasMore {
                    let option = try ctx.next()
                    if let unit = StringCommands.expiryUnit(option) {
                        guard !keepTTL, expiry == nil || expiry!.unit == unit, ctx.hasMore else { throw CommandError.syntax }
                        expiry = (try ctx.next(), unit)
                    } else if option.isKeyword("KEEPTTL") {
                        guard expiry == nil else { throw CommandError.syntax }
                        keepTTL = true
                    } else if option.isKeyword("NX") || option.isKeyword("XX") {
                        let wanted: WriteCondition = option.isKeyword("NX") ? .ifAbsent : .ifPresent
                        guard condition == .always || condition == wanted else { throw CommandError.syntax }
                        condition = wanted
                    } else if option.isKeyword("GET") {
                        returnOld = true
                    } else {
                        throw CommandError.syntax
                    }
                }
                if let expiry { expiresAt = try StringCommands.expiresAt(expiry.argument, unit: expiry.unit, now: ctx.now, command: "set") }
                // GET, KEEPTTL, and an EXAT/PXAT already past decide on the current entry: a key
                // operation. Everything else is the plain write, SET's fast path.
                if returnOld || keepTTL || (expiresAt != 0 && expiresAt <= ctx.now) {
                    let expiry: KeyOperation.Expiry = keepTTL ? .keep : expiresAt == 0 ? .unchanged : .at(expiresAt)
                    let setCondition: KeyOperation.SetCondition = condition == .ifAbsent ? .ifAbsent : condition == .ifPresent ? .ifPresent : .always
                    let operation = KeyOperation.set(Array(value.readableBytesView), expiry: expiry, condition: setCondition, returnOld: returnOld)
                    return ctx.reply(keys.apply(operation, to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, StringCommands.write)
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
                try Self.delete(&ctx, &out, cache: cache)
            },
            Command("unlink", arity: -2, summary: "UNLINK key [key ...]: DEL (the memory is reclaimed at once either way)") { ctx, out throws(CommandError) in
                try Self.delete(&ctx, &out, cache: cache)
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

    /// DEL / UNLINK.
    static func delete(_ ctx: inout CommandContext, _ out: inout RESPWriter, cache: any ExactCache) throws(CommandError) -> CommandResult {
        ctx.reply(cache.delete(Array(ctx.arguments), now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
            switch result {
            case .success(let n): out.writeRESPInteger(n)
            case .failure(let failure): out.writeRESPError(CommandError.notStored(failure).line)
            }
        }
    }

    @inlinable
    static func writeValue(_ read: CacheRead, _ out: inout RESPWriter) {
        switch read {
        case .hit(_, let meta, _) where meta.kind != .string: out.writeRESPError(KeyOperationReply.wrongTypeLine)
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
