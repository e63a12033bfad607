import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// The string commands Redis clients and caching libraries send beyond GET/SET: SETNX, SETEX,
/// PSETEX, MGET, MSET, GETDEL, GETEX, APPEND, STRLEN and the counters — with redis-server's
/// replies and errors. Plain writes go through ``ExactCache`` (the fast path of SET); the
/// read-modify-writes through ``KeyOperations``.
struct StringCommands: CommandGroup {
    let cache: any ExactCache
    let keys: any KeyOperations
    /// Largest MGET reply (the client's output bound: more would close its connection).
    let maxReplyBytes: Int

    var commands: [Command] {
        let cache = cache, keys = keys, maxReplyBytes = maxReplyBytes
        return [
            Command("setnx", arity: 3, summary: "SETNX key value: 1 when set, 0 when the key exists") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                return ctx.reply(cache.write(key, value: value, meta: EntryMeta(createdAt: ctx.now), condition: .ifAbsent, now: ctx.time, on: ctx.eventLoop),
                                 into: &out) { written, out in
                    switch written {
                    case .stored: out.writeRESPInteger(1)
                    case .notStored, .leaseRefused: out.writeRESPInteger(0)
                    case .failed(let failure): out.writeRESPError(CommandError.notStored(failure).line)
                    }
                }
            },
            Command("setex", arity: 4, summary: "SETEX key seconds value: +OK") { ctx, out throws(CommandError) in
                try Self.setWithExpiry(&ctx, &out, cache: cache, unit: 1000)
            },
            Command("psetex", arity: 4, summary: "PSETEX key milliseconds value: +OK") { ctx, out throws(CommandError) in
                try Self.setWithExpiry(&ctx, &out, cache: cache, unit: 1)
            },
            Command("mget", arity: -2, summary: "MGET key [key ...]: each value, or nil (absent, or not a string)") { ctx, out throws(CommandError) in
                var reads: [Deferred<CacheRead>] = []
                reads.reserveCapacity(ctx.argumentCount)
                while ctx.hasMore { reads.append(cache.read(try ctx.next(), lease: 0, now: ctx.time, on: ctx.eventLoop)) }
                return ctx.reply(Deferred.all(reads, on: ctx.eventLoop), into: &out) { found, out in
                    // Measured before a byte is written: one key named a million times over a
                    // large value would otherwise build a reply of terabytes.
                    var bytes = 0
                    for case .hit(let value, _, _) in found { bytes += value.count + 16 }
                    guard bytes <= maxReplyBytes else {
                        out.writeRESPError("ERR the MGET reply would be \(bytes) bytes, over the client output buffer limit (\(maxReplyBytes)); ask for fewer keys")
                        return
                    }
                    out.writeRESPArrayHeader(found.count)
                    for read in found {
                        if case .hit(let value, let meta, _) = read, meta.kind == .string { out.writeRESPBulk(bytes: value.bytes) } else { out.writeRESPNull() }
                    }
                }
            },
            Command("mset", arity: -3, summary: "MSET key value [key value ...]: +OK") { ctx, out throws(CommandError) in
                guard ctx.argumentCount % 2 == 0 else { throw CommandError.wrongArity("mset") }
                var writes: [Deferred<CacheWrite>] = []
                writes.reserveCapacity(ctx.argumentCount / 2)
                while ctx.hasMore {
                    let key = try ctx.next(), value = try ctx.next()
                    writes.append(cache.write(key, value: value, meta: EntryMeta(createdAt: ctx.now), condition: .always, now: ctx.time, on: ctx.eventLoop))
                }
                return ctx.reply(Deferred.all(writes, on: ctx.eventLoop), into: &out) { written, out in
                    for case .failed(let failure) in written {
                        out.writeRESPError(CommandError.notStored(failure).line)
                        return
                    }
                    out.writeRESPOK()
                }
            },
            Command("getdel", arity: 2, summary: "GETDEL key: the value, then the key is deleted") { ctx, out throws(CommandError) in
                ctx.reply(keys.apply(.getAndDelete, to: try ctx.next(), now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("getex", arity: -2, summary: "GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]: the value, its expiry changed") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var expiry = KeyOperation.Expiry.unchanged
                var options: [[UInt8]] = []
                // The kind of option given (an option may repeat, the last value counting; two
                // different ones may not), as Redis parses them.
                var given: String?
                while ctx.hasMore {
                    let option = try ctx.next()
                    options.append(Array(option.readableBytesView))
                    let kind = option.text.uppercased()
                    guard given == nil || given == kind else { throw CommandError.syntax }
                    given = kind
                    if option.isKeyword("PERSIST") {
                        expiry = .persist
                    } else if let unit = Self.expiryUnit(option) {
                        guard ctx.hasMore else { throw CommandError.syntax }
                        let amount = try ctx.next()
                        options.append(Array(amount.readableBytesView))
                        do throws(CommandError) {
                            expiry = .at(try Self.expiresAt(amount, unit: unit, now: ctx.now, command: "getex"))
                        } catch {
                            expiry = .invalid(.error(error.line))
                        }
                    } else {
                        throw CommandError.syntax
                    }
                }
                return ctx.reply(keys.apply(.getAndExpire(expiry, options: options), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("append", arity: 3, summary: "APPEND key value: the new length") { ctx, out throws(CommandError) in
                let key = try ctx.next(), tail = try ctx.next()
                return ctx.reply(keys.apply(.append(Array(tail.readableBytesView)), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("strlen", arity: 2, summary: "STRLEN key: the value's length in bytes (0 for no key)") { ctx, out throws(CommandError) in
                ctx.reply(cache.read(try ctx.next(), lease: 0, now: ctx.time, on: ctx.eventLoop), into: &out) { read, out in
                    switch read {
                    case .hit(_, let meta, _) where meta.kind != .string: out.writeRESPError(Self.wrongType)
                    case .hit(let value, _, _): out.writeRESPInteger(value.count)
                    case .miss: out.writeRESPInteger(0)
                    }
                }
            },
            Command("incr", arity: 2, summary: "INCR key: the value plus 1") { ctx, out throws(CommandError) in
                ctx.reply(keys.apply(.incrementBy(1), to: try ctx.next(), now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("decr", arity: 2, summary: "DECR key: the value minus 1") { ctx, out throws(CommandError) in
                ctx.reply(keys.apply(.incrementBy(-1), to: try ctx.next(), now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("incrby", arity: 3, summary: "INCRBY key increment: the value plus increment") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                guard let by = try ctx.next().redisInteger else { throw CommandError.notInteger }
                return ctx.reply(keys.apply(.incrementBy(by), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("decrby", arity: 3, summary: "DECRBY key decrement: the value minus decrement") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                guard let by = try ctx.next().redisInteger else { throw CommandError.notInteger }
                guard by != .min else { throw CommandError("decrement would overflow") }
                return ctx.reply(keys.apply(.incrementBy(-by), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, Self.write)
            },
            Command("incrbyfloat", arity: 3, summary: "INCRBYFLOAT key increment: the new value, as Redis prints it") { ctx, out throws(CommandError) in
                let key = try ctx.next(), text = try ctx.next()
                let by = RedisNumbers.longDouble(text.readableBytesView)
                return ctx.reply(keys.apply(.incrementByFloat(by, text: Array(text.readableBytesView)), to: key, now: ctx.time, on: ctx.eventLoop),
                                 ordered: keys.answersInOrder, into: &out, Self.write)
            },
        ]
    }

    static let wrongType = KeyOperationReply.wrongTypeLine

    /// SETEX / PSETEX.
    static func setWithExpiry(_ ctx: inout CommandContext, _ out: inout RESPWriter, cache: any ExactCache, unit: Int64) throws(CommandError) -> CommandResult {
        let key = try ctx.next(), amount = try ctx.next(), value = try ctx.next()
        guard let n = amount.redisInteger else { throw CommandError.notInteger }
        let at = try ExactCacheCommands.expiry(Int(n), unitMilliseconds: unit, now: ctx.now, command: ctx.name)
        return ctx.reply(cache.write(key, value: value, meta: EntryMeta(createdAt: ctx.now, expiresAt: at), condition: .always, now: ctx.time, on: ctx.eventLoop),
                         into: &out) { written, out in
            if case .failed(let failure) = written { out.writeRESPError(CommandError.notStored(failure).line) } else { out.writeRESPOK() }
        }
    }

    /// EX / PX / EXAT / PXAT: how many ms one unit is, and whether it is absolute; nil for any other word.
    static func expiryUnit(_ option: ByteBuffer) -> (ms: Int64, absolute: Bool)? {
        if option.isKeyword("EX") { return (1000, false) }
        if option.isKeyword("PX") { return (1, false) }
        if option.isKeyword("EXAT") { return (1000, true) }
        if option.isKeyword("PXAT") { return (1, true) }
        return nil
    }

    /// The absolute expiry an EX / PX / EXAT / PXAT argument names; Redis's errors for a value that
    /// is not an integer, not positive, or overflows.
    static func expiresAt(_ argument: ByteBuffer, unit: (ms: Int64, absolute: Bool), now: Int64, command: String) throws(CommandError) -> Int64 {
        guard let n = argument.redisInteger else { throw CommandError.notInteger }
        guard unit.absolute else { return try ExactCacheCommands.expiry(Int(n), unitMilliseconds: unit.ms, now: now, command: command) }
        let (ms, overflow) = n.multipliedReportingOverflow(by: unit.ms)
        guard n > 0, !overflow else { throw CommandError("invalid expire time in '\(command)' command") }
        return ms
    }

    /// A key operation's reply, or why the store did not take it.
    @Sendable
    static func write(_ result: Result<KeyOperationReply, StoreFailure>, _ out: inout RESPWriter) {
        switch result {
        case .failure(let failure): out.writeRESPError(CommandError.notStored(failure).line)
        case .success(let reply): write(reply, &out)
        }
    }

    static func write(_ reply: KeyOperationReply, _ out: inout RESPWriter) {
        switch reply {
        case .integer(let n): out.writeRESPInteger(Int(n))
        case .bulk(let bytes?): out.writeRESPBulk(bytes: bytes)
        case .bulk(nil): out.writeRESPNull()
        case .ok: out.writeRESPOK()
        case .error(let line): out.writeRESPError(line)
        }
    }
}
