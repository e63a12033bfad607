import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// The keyspace commands of Redis that caching libraries send: the expiry commands, PERSIST,
/// TYPE, SCAN, KEYS and FLUSHDB / FLUSHALL (only with `--allow-flush`), with redis-server's
/// replies and errors.
struct KeyCommands: CommandGroup {
    let cache: any ExactCache
    let keys: any KeyOperations
    let allowFlush: Bool

    /// KEYS answers at most this many keys (SCAN has no such bound: it pages).
    static let maxKeysReply = 1_000_000

    var commands: [Command] {
        let keys = keys, allowFlush = allowFlush
        return [
            Command("expire", arity: -3, summary: "EXPIRE key seconds [NX | XX | GT | LT]: 1 when set, 0 when not") { ctx, out throws(CommandError) in
                try Self.expire(&ctx, &out, keys: keys, unit: 1000, absolute: false)
            },
            Command("pexpire", arity: -3, summary: "PEXPIRE key milliseconds [NX | XX | GT | LT]: 1 when set, 0 when not") { ctx, out throws(CommandError) in
                try Self.expire(&ctx, &out, keys: keys, unit: 1, absolute: false)
            },
            Command("expireat", arity: -3, summary: "EXPIREAT key unix-seconds [NX | XX | GT | LT]: 1 when set, 0 when not") { ctx, out throws(CommandError) in
                try Self.expire(&ctx, &out, keys: keys, unit: 1000, absolute: true)
            },
            Command("pexpireat", arity: -3, summary: "PEXPIREAT key unix-ms [NX | XX | GT | LT]: 1 when set, 0 when not") { ctx, out throws(CommandError) in
                try Self.expire(&ctx, &out, keys: keys, unit: 1, absolute: true)
            },
            Command("persist", arity: 2, summary: "PERSIST key: 1 when an expiry was removed") { ctx, out throws(CommandError) in
                ctx.reply(keys.apply(.persist, to: try ctx.next(), now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, StringCommands.write)
            },
            Command("type", arity: 2, summary: "TYPE key: string, hash or none") { ctx, out throws(CommandError) in
                ctx.reply(keys.kind(try ctx.next(), now: ctx.time, on: ctx.eventLoop), into: &out) { found, out in
                    switch found {
                    case .success(let kind): out.writeRESPSimpleString(kind?.typeName ?? "none")
                    case .failure(let failure): out.writeRESPError(Self.unreadable(failure))
                    }
                }
            },
            Command("scan", arity: -2, summary: "SCAN cursor [MATCH pattern] [COUNT n] [TYPE string|hash]: [next cursor, keys]") { ctx, out throws(CommandError) in
                guard let cursor = UInt64(try ctx.next().text) else { throw CommandError("invalid cursor") }
                var count = 10
                var pattern: GlobPattern?
                var kind: EntryKind?
                var unknownType = false
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("COUNT") {
                        guard let n = try ctx.next().redisInteger else { throw CommandError.notInteger }
                        guard n >= 1 else { throw CommandError.syntax }
                        count = Int(min(n, 100_000))
                    } else if option.isKeyword("MATCH") {
                        pattern = GlobPattern(try ctx.next().readableBytesView)
                    } else if option.isKeyword("TYPE") {
                        let name = try ctx.next()
                        if name.isKeyword("string") { kind = .string } else if name.isKeyword("hash") { kind = .hash } else { unknownType = true }
                    } else {
                        throw CommandError.syntax
                    }
                }
                // No key here is of another type: the walk would find nothing.
                if unknownType {
                    out.writeRESPArrayHeader(2)
                    out.writeRESPBulk("0")
                    out.writeRESPArrayHeader(0)
                    return .done
                }
                let matcher = pattern
                return ctx.reply(keys.scan(from: cursor, count: count, kind: kind, now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
                    switch result {
                    case .failure(let failure): out.writeRESPError(Self.unreadable(failure))
                    case .success(.invalidCursor): out.writeRESPError("ERR invalid cursor")
                    case .success(.page(let next, let found)):
                        let shown = matcher.map { m in found.filter { m.matches(Array($0.readableBytesView)) } } ?? found
                        out.writeRESPArrayHeader(2)
                        out.writeRESPBulk(String(next))
                        out.writeRESPArrayHeader(shown.count)
                        for key in shown { out.writeRESPBulk(key) }
                    }
                }
            },
            Command("keys", arity: 2, summary: "KEYS pattern: every key that matches (at most 1,000,000; SCAN pages)") { ctx, out throws(CommandError) in
                let pattern = GlobPattern(try ctx.next().readableBytesView)
                return ctx.reply(keys.keys(matching: pattern, limit: Self.maxKeysReply, now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
                    switch result {
                    case .failure(let failure): out.writeRESPError(Self.unreadable(failure))
                    case .success(nil): out.writeRESPError("ERR KEYS would answer more than \(Self.maxKeysReply) keys; use SCAN, which pages")
                    case .success(let found?):
                        out.writeRESPArrayHeader(found.count)
                        for key in found { out.writeRESPBulk(key) }
                    }
                }
            },
            Command("flushdb", arity: -1, summary: "FLUSHDB [ASYNC | SYNC]: deletes every cache key (needs --allow-flush)") { ctx, out throws(CommandError) in
                try Self.flush(&ctx, &out, keys: keys, allowed: allowFlush)
            },
            Command("flushall", arity: -1, summary: "FLUSHALL [ASYNC | SYNC]: FLUSHDB (one database; needs --allow-flush)") { ctx, out throws(CommandError) in
                try Self.flush(&ctx, &out, keys: keys, allowed: allowFlush)
            },
        ]
    }

    /// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT.
    static func expire(_ ctx: inout CommandContext, _ out: inout RESPWriter, keys: any KeyOperations, unit: Int64, absolute: Bool) throws(CommandError) -> CommandResult {
        let key = try ctx.next(), argument = try ctx.next()
        var condition = KeyOperation.ExpireCondition.always
        var nx = false, xx = false, gt = false, lt = false
        while ctx.hasMore {
            let option = try ctx.next()
            if option.isKeyword("NX") { nx = true } else if option.isKeyword("XX") { xx = true } else if option.isKeyword("GT") { gt = true } else if option.isKeyword("LT") { lt = true } else {
                throw CommandError("Unsupported option \(option.text)")
            }
        }
        if nx && (xx || gt || lt) { throw CommandError("NX and XX, GT or LT options at the same time are not compatible") }
        if gt && lt { throw CommandError("GT and LT options at the same time are not compatible") }
        if nx { condition = .ifNone } else if gt { condition = .ifLater } else if lt { condition = .ifEarlier } else if xx { condition = .ifSet }
        guard let amount = argument.redisInteger else { throw CommandError.notInteger }
        let invalid = CommandError("invalid expire time in '\(ctx.name)' command")
        // As Redis: the amount in ms, then the base time added, each step checked for overflow;
        // any result at or before now deletes the key.
        let (ms, overflow) = amount.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw invalid }
        var at = ms
        if !absolute {
            let (sum, o) = ms.addingReportingOverflow(ctx.now)
            guard !o else { throw invalid }
            at = sum
        }
        return ctx.reply(keys.apply(.expire(at: at, condition: condition), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, StringCommands.write)
    }

    static func flush(_ ctx: inout CommandContext, _ out: inout RESPWriter, keys: any KeyOperations, allowed: Bool) throws(CommandError) -> CommandResult {
        if ctx.hasMore {
            let mode = try ctx.next()
            guard !ctx.hasMore, mode.isKeyword("ASYNC") || mode.isKeyword("SYNC") else { throw CommandError.syntax }
        }
        guard allowed else {
            throw CommandError("\(ctx.name.uppercased()) is disabled: it deletes every cache key, for every client (and in shared mode every instance); start sluice with --allow-flush (SLUICE_ALLOW_FLUSH=1) to allow it")
        }
        return ctx.reply(keys.flush(now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
            switch result {
            case .success: out.writeRESPOK()
            case .failure(let failure): out.writeRESPError(CommandError.notStored(failure).line)
            }
        }
    }

    /// A read the store could not answer.
    static func unreadable(_ failure: StoreFailure) -> String {
        switch failure {
        case .refused(let message): return message.hasPrefix("ERR") || message.hasPrefix("WRONGTYPE") ? message : "ERR " + message
        case .unavailable, .unconfirmed, .notPersisted, .queueFull:
            return "TRYAGAIN the keyspace cannot be read now (\(failure.reason)); try again"
        }
    }
}
