import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// SEM.SET, SEM.GET, SEM.DEL, SEM.INFO, SEM.CONFIG: the semantic cache (embedded mode).
enum SemanticCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let cache = env.semantic
        let embedder = env.embedder
        let offload = env.configuration.semanticOffloadEntries
        return [
            Command("sem.set", arity: -4, summary: "SEM.SET ns prompt response [PX ms | EX s] [SCOPE s] [VEC f32blob]: +OK") { ctx, out throws(CommandError) in
                let ns = try ctx.next().text, prompt = try ctx.next().text
                let response = TieredCache.copy(try ctx.next())
                var expiresAt: Int64 = 0
                var options = try Options.parse(&ctx, allowMinScore: false) { option, ctx throws(CommandError) -> Bool in
                    guard option.isKeyword("PX") || option.isKeyword("EX") else { return false }
                    guard expiresAt == 0 else { throw CommandError.syntax }
                    expiresAt = try ExactCacheCommands.expiry(try ctx.nextInteger(), unitMilliseconds: option.isKeyword("EX") ? 1000 : 1, now: ctx.now, command: "sem.set")
                    return true
                }
                let (vector, version) = try options.vector(for: prompt, embedder)
                let now = ctx.now
                guard let result = cache.write(ns, { $0.set(prompt, response: response, vector: vector, embedder: version, scope: options.scope,
                                                          createdAt: now, expiresAt: expiresAt) }) else {
                    throw CommandError("too many semantic namespaces (at most \(cache.maxNamespaces))")
                }
                if case .failure(let f) = result { throw mismatch(ns, f) }
                env.recordSemantic(SemanticChange.set(namespace: ns, scope: options.scope, prompt: prompt, response: response, embedder: version,
                                    vector: vector, createdAt: now, expiresAt: expiresAt))
                out.writeRESPOK()
                return .done
            },
            Command("sem.get", arity: -3, summary: "SEM.GET ns prompt [MINSCORE x] [SCOPE s] [VEC f32blob]: [response, score, matched_prompt] or nil") { ctx, out throws(CommandError) in
                let ns = try ctx.next().text, prompt = try ctx.next().text
                var options = try Options.parse(&ctx, allowMinScore: true) { _, _ in false }
                let (vector, version) = try options.vector(for: prompt, embedder)
                let now = ctx.now, scope = options.scope, minScore = options.minScore
                if cache.count(ns) > offload {
                    // A big scan: off the event loop, so other connections are not held up.
                    return .later(env.searchPool.runIfActive(eventLoop: ctx.eventLoop) {
                        getReply(ns, cache.get(ns, prompt: prompt, vector: vector, embedder: version, scope: scope, minScore: minScore, now: now))
                    })
                }
                getReply(ns, cache.get(ns, prompt: prompt, vector: vector, embedder: version, scope: scope, minScore: minScore, now: now)).encode(into: &out)
                return .done
            },
            Command("sem.del", arity: -2, summary: "SEM.DEL ns [prompt [SCOPE s]]: entries removed (no prompt: the whole namespace)") { ctx, out throws(CommandError) in
                let ns = try ctx.next().text
                guard ctx.hasMore else {
                    out.writeRESPInteger(cache.drop(ns))
                    env.recordSemantic(.drop(namespace: ns))
                    return .done
                }
                let prompt = try ctx.next().text
                var scope = ""
                if ctx.hasMore {
                    guard try ctx.next().isKeyword("SCOPE"), ctx.hasMore else { throw CommandError.syntax }
                    scope = try ctx.next().text
                }
                guard !ctx.hasMore else { throw CommandError.syntax }
                let removed = cache.write(ns, create: false) { $0.delete(prompt, scope: scope) } ?? false
                if removed { env.recordSemantic(.delete(namespace: ns, scope: scope, prompt: prompt)) }
                out.writeRESPInteger(removed ? 1 : 0)
                return .done
            },
            Command("sem.info", arity: 2, summary: "SEM.INFO ns: map of entries, dimension, embedder, min_score, max_entries, hits, misses, traps, evictions, expired") { ctx, out throws(CommandError) in
                guard let info = cache.info(try ctx.next().text) else {
                    out.writeRESPNullArray()
                    return .done
                }
                infoReply(info).encode(into: &out)
                return .done
            },
            Command("sem.config", arity: -2, summary: "SEM.CONFIG ns [MINSCORE x] [MAXENTRIES n]: the namespace's info") { ctx, out throws(CommandError) in
                let ns = try ctx.next().text
                var minScore: Float?, maxEntries: Int?
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("MINSCORE") {
                        minScore = try score(try ctx.next())
                    } else if option.isKeyword("MAXENTRIES") {
                        let n = try ctx.nextInteger()
                        guard n >= 1, n <= 10_000_000 else { throw CommandError("MAXENTRIES must be 1 to 10000000") }
                        maxEntries = n
                    } else {
                        throw CommandError.syntax
                    }
                }
                let configured: Bool? = cache.write(ns) { n -> Bool in
                    if let minScore { n.minScore = minScore }
                    if let maxEntries { n.maxEntries = maxEntries }
                    return true
                }
                guard configured != nil, let info = cache.info(ns) else {
                    throw CommandError("too many semantic namespaces (at most \(cache.maxNamespaces))")
                }
                infoReply(info).encode(into: &out)
                return .done
            },
        ]
    }

    static func getReply(_ ns: String, _ result: Result<SemanticNamespace.Outcome, SemanticNamespace.Failure>) -> RESPValue {
        switch result {
        case .failure(let f): return .error(mismatch(ns, f).line)
        case .success(.hit(let m)): return .array([.bulkString(m.entry.response), .double(Double(m.score)), .bulk(m.entry.prompt)])
        case .success(.miss), .success(.trap): return .array(nil)
        }
    }

    /// SCOPE, MINSCORE and VEC, in any order, plus what the command adds (`extra`).
    struct Options {
        var scope = ""
        var minScore: Float?
        var vector: [Float]?

        static func parse(_ ctx: inout CommandContext, allowMinScore: Bool,
                          extra: (ByteBuffer, inout CommandContext) throws(CommandError) -> Bool) throws(CommandError) -> Options {
            var o = Options()
            while ctx.hasMore {
                let option = try ctx.next()
                guard ctx.hasMore else { throw CommandError.syntax }
                if option.isKeyword("SCOPE") {
                    o.scope = try ctx.next().text
                } else if option.isKeyword("VEC") {
                    o.vector = try SemanticCommands.vector(try ctx.next())
                } else if allowMinScore && option.isKeyword("MINSCORE") {
                    o.minScore = try SemanticCommands.score(try ctx.next())
                } else if try !extra(option, &ctx) {
                    throw CommandError.syntax
                }
            }
            return o
        }

        /// The client's vector, or the built-in embedder's for `text`, with the embedder's name.
        mutating func vector(for text: String, _ embedder: TokenEmbedder?) throws(CommandError) -> ([Float], String) {
            if let v = vector { return (v, "client") }
            guard let embedder else { throw CommandError("the built-in embedder is not available on this server; send VEC") }
            guard let v = embedder.embed(text) else {
                throw CommandError("the prompt has no words to embed; send VEC for it")
            }
            return (v, embedder.version)
        }
    }

    /// VEC: little-endian float32, one per dimension (4 to 16,384 bytes).
    static func vector(_ blob: ByteBuffer) throws(CommandError) -> [Float] {
        let n = blob.readableBytes
        guard n > 0, n % 4 == 0, n <= 4 * 4096 else {
            throw CommandError("VEC must be little-endian float32 values: 1 to 4096 of them (got \(n) bytes)")
        }
        var out = [Float](repeating: 0, count: n / 4)
        for i in 0..<out.count {
            let f = Float(bitPattern: blob.getInteger(at: blob.readerIndex + 4 * i, endianness: .little, as: UInt32.self)!)
            guard f.isFinite else { throw CommandError("VEC holds a value that is not a finite number") }
            out[i] = f
        }
        return out
    }

    static func score(_ b: ByteBuffer) throws(CommandError) -> Float {
        guard let x = b.doubleValue, x >= -1, x <= 1 else { throw CommandError("MINSCORE must be a number from -1 to 1") }
        return Float(x)
    }

    static func mismatch(_ ns: String, _ f: SemanticNamespace.Failure) -> CommandError {
        switch f {
        case .embedderMismatch(let have, let got):
            return CommandError("namespace '\(ns)' holds vectors of \(have) (embedder/dimension); this request's are \(got)")
        }
    }

    static func infoReply(_ i: SemanticCache.Info) -> RESPValue {
        .map([
            .bulk("entries"), .integer(i.entries),
            .bulk("dimension"), i.dimension.map { .integer($0) } ?? .null,
            .bulk("embedder"), i.embedder.map { .bulk($0) } ?? .null,
            .bulk("min_score"), .double(Double("\(i.minScore)") ?? Double(i.minScore)),
            .bulk("max_entries"), .integer(i.maxEntries),
            .bulk("hits"), .integer(i.hits),
            .bulk("misses"), .integer(i.misses),
            .bulk("traps"), .integer(i.traps),
            .bulk("evictions"), .integer(i.evictions),
            .bulk("expired"), .integer(i.expired),
        ])
    }
}
