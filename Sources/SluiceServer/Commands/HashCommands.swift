import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// The hash subset caching libraries use (LangChain's RedisCache keeps each prompt's generations
/// in one): HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HKEYS, HVALS. A hash
/// is one cache entry (its fields encoded together, ``HashFields``), so it takes its bytes of the
/// L1 budget, expires, persists and is invalidated like any value.
struct HashCommands: CommandGroup {
    let keys: any KeyOperations
    /// Largest HMGET reply (the client's output bound).
    let maxReplyBytes: Int

    var commands: [Command] {
        let keys = keys, maxReplyBytes = maxReplyBytes
        return [
            Command("hset", arity: -4, summary: "HSET key field value [field value ...]: how many fields are new") { ctx, out throws(CommandError) in
                try Self.set(&ctx, &out, keys: keys, okReply: false)
            },
            Command("hmset", arity: -4, summary: "HMSET key field value [field value ...]: +OK") { ctx, out throws(CommandError) in
                try Self.set(&ctx, &out, keys: keys, okReply: true)
            },
            Command("hsetnx", arity: 4, summary: "HSETNX key field value: 1 when set, 0 when the field exists") { ctx, out throws(CommandError) in
                let key = try ctx.next(), field = try ctx.next(), value = try ctx.next()
                let pair = KeyOperation.HashPair(Array(field.readableBytesView), Array(value.readableBytesView))
                return ctx.reply(keys.apply(.hashSet([pair], onlyIfNew: true), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, StringCommands.write)
            },
            Command("hdel", arity: -3, summary: "HDEL key field [field ...]: how many were removed") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var fields: [[UInt8]] = []
                while ctx.hasMore { fields.append(Array(try ctx.next().readableBytesView)) }
                return ctx.reply(keys.apply(.hashDelete(fields), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out, StringCommands.write)
            },
            Command("hget", arity: 3, summary: "HGET key field: the value, or nil") { ctx, out throws(CommandError) in
                let key = try ctx.next(), field = Array(try ctx.next().readableBytesView)
                return Self.read(&ctx, &out, keys: keys, key) { fields, out in
                    if let value = fields?.value(of: field) { out.writeRESPBulk(bytes: value) } else { out.writeRESPNull() }
                }
            },
            Command("hmget", arity: -3, summary: "HMGET key field [field ...]: each value, or nil") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var names: [[UInt8]] = []
                while ctx.hasMore { names.append(Array(try ctx.next().readableBytesView)) }
                let asked = names
                return Self.read(&ctx, &out, keys: keys, key) { fields, out in
                    // One lookup table for many names (HMGET of M names on F fields is M + F, not M × F).
                    let index = fields.map { f in Dictionary(f.pairs.map { ($0.field, $0.value) }, uniquingKeysWith: { a, _ in a }) } ?? [:]
                    let values = asked.map { index[$0] }
                    let bytes = values.reduce(0) { $0 + ($1?.count ?? 0) + 16 }
                    guard bytes <= maxReplyBytes else {
                        out.writeRESPError("ERR the HMGET reply would be \(bytes) bytes, over the client output buffer limit (\(maxReplyBytes)); ask for fewer fields")
                        return
                    }
                    out.writeRESPArrayHeader(values.count)
                    for value in values {
                        if let value { out.writeRESPBulk(bytes: value) } else { out.writeRESPNull() }
                    }
                }
            },
            Command("hgetall", arity: 2, summary: "HGETALL key: field, value, field, value ... (a map in RESP3)") { ctx, out throws(CommandError) in
                Self.read(&ctx, &out, keys: keys, try ctx.next()) { fields, out in
                    let pairs = fields?.pairs ?? []
                    out.writeRESPMapHeader(pairs.count)
                    for (field, value) in pairs {
                        out.writeRESPBulk(bytes: field)
                        out.writeRESPBulk(bytes: value)
                    }
                }
            },
            Command("hexists", arity: 3, summary: "HEXISTS key field: 1 or 0") { ctx, out throws(CommandError) in
                let key = try ctx.next(), field = Array(try ctx.next().readableBytesView)
                return Self.read(&ctx, &out, keys: keys, key) { fields, out in out.writeRESPInteger(fields?.value(of: field) == nil ? 0 : 1) }
            },
            Command("hlen", arity: 2, summary: "HLEN key: how many fields") { ctx, out throws(CommandError) in
                Self.read(&ctx, &out, keys: keys, try ctx.next()) { fields, out in out.writeRESPInteger(fields?.count ?? 0) }
            },
            Command("hkeys", arity: 2, summary: "HKEYS key: the fields") { ctx, out throws(CommandError) in
                Self.read(&ctx, &out, keys: keys, try ctx.next()) { fields, out in
                    let pairs = fields?.pairs ?? []
                    out.writeRESPArrayHeader(pairs.count)
                    for pair in pairs { out.writeRESPBulk(bytes: pair.field) }
                }
            },
            Command("hvals", arity: 2, summary: "HVALS key: the values") { ctx, out throws(CommandError) in
                Self.read(&ctx, &out, keys: keys, try ctx.next()) { fields, out in
                    let pairs = fields?.pairs ?? []
                    out.writeRESPArrayHeader(pairs.count)
                    for pair in pairs { out.writeRESPBulk(bytes: pair.value) }
                }
            },
        ]
    }

    static func set(_ ctx: inout CommandContext, _ out: inout RESPWriter, keys: any KeyOperations, okReply: Bool) throws(CommandError) -> CommandResult {
        guard ctx.argumentCount % 2 == 1 else { throw CommandError.wrongArity(ctx.name) }
        let key = try ctx.next()
        var pairs: [KeyOperation.HashPair] = []
        pairs.reserveCapacity(ctx.argumentCount / 2)
        while ctx.hasMore {
            let field = try ctx.next(), value = try ctx.next()
            pairs.append(KeyOperation.HashPair(Array(field.readableBytesView), Array(value.readableBytesView)))
        }
        return ctx.reply(keys.apply(.hashSet(pairs, onlyIfNew: false), to: key, now: ctx.time, on: ctx.eventLoop), ordered: keys.answersInOrder, into: &out) { result, out in
            if okReply, case .success(.integer) = result { out.writeRESPOK() } else { StringCommands.write(result, &out) }
        }
    }

    /// A hash read: `write` gets the fields (nil for no key), or the reply is WRONGTYPE / the
    /// store's error.
    static func read(_ ctx: inout CommandContext, _ out: inout RESPWriter, keys: any KeyOperations, _ key: ByteBuffer,
                     _ write: @escaping @Sendable (HashFields?, inout RESPWriter) -> Void) -> CommandResult {
        ctx.reply(keys.hashFields(key, now: ctx.time, on: ctx.eventLoop), into: &out) { result, out in
            switch result {
            case .success(.absent): write(nil, &out)
            case .success(.fields(let fields)): write(fields, &out)
            case .success(.wrongType): out.writeRESPError(KeyOperationReply.wrongTypeLine)
            case .failure(let failure): out.writeRESPError(KeyCommands.unreadable(failure))
            }
        }
    }
}
