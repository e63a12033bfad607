import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// CACHE.GET / CACHE.SET: the cache with layer, age, token/cost accounting and leases.
struct RichCacheCommands: CommandGroup {
    let cache: any ExactCache
    /// Longest lease a client may ask for, in ms.
    let maxLease: Int64

    /// Longest STALE window a client may ask for (what is kept is `--max-stale`, at most this).
    static let maxStale: Int64 = 2_592_000_000

    static let leaseRefused = CommandError("lease token is not the current lease on this key (it expired and another caller holds it); value not stored")

    var commands: [Command] {
        let cache = cache, maxLease = maxLease
        return [
            Command("cache.get", arity: -2, summary: "CACHE.GET key [LEASE ms] [STALE ms]: [value|nil, layer (l1, l2, stale)|nil, age_ms|nil, lease_token|nil]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var lease: Int64 = 0, stale: Int64 = 0
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("LEASE") {
                        let ms = try ctx.nextInteger()
                        guard ms > 0, Int64(ms) <= maxLease else {
                            throw CommandError("LEASE must be between 1 and \(maxLease) ms")
                        }
                        lease = Int64(ms)
                    } else if option.isKeyword("STALE") {
                        // An entry expired at most this long ago may answer (stale-if-error),
                        // flagged `stale`; as far back as --max-stale keeps them.
                        let ms = try ctx.nextInteger()
                        guard ms >= 0, Int64(ms) <= Self.maxStale else {
                            throw CommandError("STALE must be between 0 and \(Self.maxStale) ms")
                        }
                        stale = Int64(ms)
                    } else {
                        throw CommandError.syntax
                    }
                }
                return ctx.reply(cache.read(key, lease: lease, stale: stale, now: ctx.time, on: ctx.eventLoop), passing: ctx.now, into: &out) { read, now, out in
                    Self.writeRead(read, now: now, into: &out)
                }
            },
            Command("cache.set", arity: -3, summary: "CACHE.SET key value [PX ms | EX s] [TOKENS n] [COST c] [TAG t] [LEASE token]: +OK") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                let (meta, condition) = try Self.writeOptions(&ctx, command: "cache.set") { _, _ in false }
                return ctx.reply(cache.write(key, value: value, meta: meta, condition: condition, now: ctx.time, on: ctx.eventLoop), into: &out) { written, out in
                    switch written {
                    case .stored, .notStored: out.writeRESPOK()
                    case .leaseRefused: out.writeRESPError(Self.leaseRefused.line)
                    case .failed(let failure): out.writeRESPError(CommandError.notStored(failure).line)
                    }
                }
            },
        ]
    }

    /// CACHE.SET's and LLM.SET's options — PX / EX, TOKENS, COST, TAG, LEASE — plus what the
    /// command adds (`extra`: true when it took the option).
    static func writeOptions(_ ctx: inout CommandContext, command: String,
                             extra: (ByteBuffer, inout CommandContext) throws(CommandError) -> Bool) throws(CommandError) -> (EntryMeta, WriteCondition) {
        var meta = EntryMeta(createdAt: ctx.now)
        var condition = WriteCondition.always
        var words = OptionWords()
        while ctx.hasMore {
            let option = try ctx.nextOption(&words)
            guard ctx.hasMore else { throw CommandError.syntax }
            if option.isKeyword("PX") || option.isKeyword("EX") {
                guard meta.expiresAt == 0 else { throw CommandError.syntax }
                meta.expiresAt = try ExactCacheCommands.expiry(try ctx.nextInteger(), unitMilliseconds: option.isKeyword("EX") ? 1000 : 1,
                                                               now: ctx.now, command: command)
            } else if option.isKeyword("TOKENS") {
                meta.tokens = try Self.tokens(ctx.nextInteger())
            } else if option.isKeyword("COST") {
                meta.cost = try Self.cost(ctx.next())
            } else if option.isKeyword("TAG") {
                meta.tag = SavingsTags.shared.id(for: try Self.tag(ctx.next()))
            } else if option.isKeyword("LEASE") {
                guard let token = UInt64(try ctx.next().text) else { throw CommandError("LEASE token is not valid") }
                condition = .leaseHolder(token)
            } else if try !extra(option, &ctx) {
                throw CommandError.syntax
            }
        }
        return (meta, condition)
    }

    /// TOKENS n: what the answer stood for, 0 to ``EntryMeta/maxTokens``.
    static func tokens(_ n: Int) throws(CommandError) -> Int64 {
        guard n >= 0 else { throw CommandError("TOKENS must not be negative") }
        guard Int64(n) <= EntryMeta.maxTokens else { throw CommandError("TOKENS must be at most \(EntryMeta.maxTokens)") }
        return Int64(n)
    }

    /// COST c: what the answer cost, 0 to ``EntryMeta/maxCost``.
    static func cost(_ bytes: ByteBuffer) throws(CommandError) -> Double {
        guard let cost = bytes.doubleValue, cost >= 0 else { throw CommandError("COST must be a non-negative number") }
        guard cost <= EntryMeta.maxCost else { throw CommandError("COST must be at most \(Int(EntryMeta.maxCost))") }
        return cost
    }

    /// A TAG's name: what metrics label savings with, so short and printable.
    static func tag(_ bytes: ByteBuffer) throws(CommandError) -> String {
        let name = bytes.readableBytes <= SavingsTags.maxNameLength ? bytes.text : ""
        guard SavingsTags.isValidName(name) else {
            throw CommandError("TAG must be 1 to \(SavingsTags.maxNameLength) printable ASCII characters, no spaces or quotes, not 'none' or 'other'")
        }
        return name
    }

    /// [value, layer, age_ms, lease_token]: a hit fills the first three, a miss at most the last.
    static func writeRead(_ read: CacheRead, now: Int64, into out: inout RESPWriter) {
        if case .hit(_, let meta, _) = read, meta.kind != .string {
            out.writeRESPError(KeyOperationReply.wrongTypeLine)
            return
        }
        switch read {
        case .hit(let value, let meta, let layer):
            let resp3 = out.version == .resp3, age = Int(max(now.subtractingSaturating(meta.createdAt), 0))
            _ = value.withUnsafeValueBytes { bytes in
                // One reservation for the whole reply (header 4, value +25, layer 11, age 23, null 5).
                out.buffer.writeReserved(minimumWritableBytes: bytes.count + 70) { space in
                    var c = RESPRawCursor(space)
                    c.put("*4\r\n")
                    c.putBulk(bytes)
                    switch layer {
                    case .l1: c.put("$2\r\nl1\r\n")
                    case .l2: c.put("$2\r\nl2\r\n")
                    case .stale: c.put("$5\r\nstale\r\n")
                    }
                    c.putInteger(age)
                    c.put(resp3 ? "_\r\n" : "$-1\r\n")
                    return c.count
                }
            }
        case .miss(let lease):
            out.writeRESPArrayHeader(4)
            out.writeRESPNull()
            out.writeRESPNull()
            out.writeRESPNull()
            if let lease { out.writeRESPBulk(String(lease)) } else { out.writeRESPNull() }
        }
    }
}
