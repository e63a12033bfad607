import Foundation
import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// SEM.SET, SEM.GET, SEM.FEEDBACK, SEM.DEL, SEM.INFO, SEM.CONFIG: the semantic cache.
struct SemanticCommands: CommandGroup {
    let store: any SemanticStore
    /// The built-in embedder (nil if its table failed to load: SEM.* then needs VEC).
    let embedder: TokenEmbedder?
    /// The exact cache: a bad verdict also deletes LLM.GET's copy of the answer for that
    /// prompt (other prompts' copies retire when next read: see ``LLMCommands``).
    let cache: any ExactCache

    var commands: [Command] {
        let store = store, embedder = embedder, cache = cache
        return [
            Command("sem.set", arity: -4, summary: "SEM.SET ns prompt response [PX ms | EX s] [SCOPE s] [TOKENS n] [COST c] [TAG t] [VEC f32blob]: +OK") { ctx, out throws(CommandError) in
                let ns = try ctx.nextTextName("namespace"), prompt = try Self.prompt(ctx.next())
                let response = ByteBuffer.owned(try ctx.next())
                var expiresAt: Int64 = 0
                var worth = AnswerWorth.none
                let options = try Options.parse(&ctx, allowMinScore: false) { option, ctx throws(CommandError) -> Bool in
                    if option.isKeyword("TOKENS") {
                        worth.tokens = try RichCacheCommands.tokens(ctx.nextInteger())
                        return true
                    }
                    if option.isKeyword("COST") {
                        worth.cost = try RichCacheCommands.cost(ctx.next())
                        return true
                    }
                    if option.isKeyword("TAG") {
                        worth.tag = SavingsTags.shared.id(for: try RichCacheCommands.tag(ctx.next()))
                        return true
                    }
                    guard option.isKeyword("PX") || option.isKeyword("EX") else { return false }
                    guard expiresAt == 0 else { throw CommandError.syntax }
                    expiresAt = try ExactCacheCommands.expiry(try ctx.nextInteger(), unitMilliseconds: option.isKeyword("EX") ? 1000 : 1, now: ctx.now, command: "sem.set")
                    return true
                }
                let (vector, version) = try options.vector(for: prompt, embedder)
                let entry = SemanticWrite(namespace: ns, scope: options.scope, prompt: prompt, response: response, embedder: version,
                                          vector: vector, createdAt: ctx.now, expiresAt: expiresAt, worth: worth)
                return ctx.reply(store.set(entry, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success = result else { return Self.writeFailure(ns, result, &out) }
                    out.writeRESPOK()
                }
            },
            Command("sem.get", arity: -3, summary: "SEM.GET ns prompt [MINSCORE x] [SCOPE s] [VEC f32blob] [WHY]: [response, score, matched_prompt] or nil; with WHY always [response|nil, score|nil, prompt|nil, why]") { ctx, out throws(CommandError) in
                let ns = try ctx.nextTextName("namespace"), prompt = try Self.prompt(ctx.next())
                let options = try Options.parse(&ctx, allowMinScore: true) { _, _ in false }
                let (vector, version) = try options.vector(for: prompt, embedder)
                let query = SemanticQuery(namespace: ns, prompt: prompt, scope: options.scope, minScore: options.minScore, embedder: version, vector: vector)
                if options.why {
                    return ctx.reply(store.get(query, now: ctx.now, on: ctx.eventLoop), into: &out) { result, out in
                        guard case .success(let outcome) = result else { return Self.writeFailure(ns, result, &out) }
                        Self.writeExplained(outcome, into: &out)
                    }
                }
                return ctx.reply(store.get(query, now: ctx.now, on: ctx.eventLoop), into: &out) { result, out in
                    switch result {
                    case .failure: Self.writeFailure(ns, result, &out)
                    case .success(.hit(let m)):
                        out.writeRESPArrayHeader(3)
                        out.writeRESPBulk(m.entry.response)
                        out.writeRESPDouble(Double(m.score))
                        out.writeRESPBulk(m.entry.prompt)
                    case .success(.miss), .success(.trap), .success(.below):
                        out.writeRESPNullArray()
                    }
                }
            },
            Command("sem.feedback", arity: -4, summary: "SEM.FEEDBACK ns prompt good|bad [SCOPE s] [MINSCORE x] [VEC f32blob]: [entry_prompt, score, threshold, good, bad, deleted] or nil") { ctx, out throws(CommandError) in
                let ns = try ctx.nextTextName("namespace"), prompt = try Self.prompt(ctx.next())
                let verdict = try ctx.next()
                guard verdict.isKeyword("GOOD") || verdict.isKeyword("BAD") else { throw CommandError("the verdict must be good or bad") }
                let options = try Options.parse(&ctx, allowMinScore: true) { _, _ in false }
                guard !options.why else { throw CommandError.syntax }
                let (vector, version) = try options.vector(for: prompt, embedder)
                let query = SemanticQuery(namespace: ns, prompt: prompt, scope: options.scope, minScore: options.minScore, embedder: version, vector: vector)
                let good = verdict.isKeyword("GOOD"), time = ctx.time, eventLoop = ctx.eventLoop
                let recorded = store.feedback(query, good: good, now: ctx.now, on: ctx.eventLoop).flatMap { result in
                    guard !good, case .success(let feedback?) = result else { return .ready(result) }
                    // The judged prompt's exact copy goes at once; a lease on its key stays (a
                    // reader that retired the copy first is asking the upstream: ending its
                    // lease would let the next reader take a second one).
                    let judged = cache.deleteKeepingLease(LLMEntry.key(namespace: ns, scope: options.scope, prompt: prompt), now: time, on: eventLoop)
                    // A verdict that deleted the entry (its own prompt, as written another way)
                    // judged the answer LLM.SET stored for the entry's prompt too: it goes with it.
                    guard feedback.deleted, feedback.prompt != prompt || feedback.scope != options.scope else { return judged.map { _ in result } }
                    return judged.flatMap { _ in
                        cache.deleteKeepingLease(LLMEntry.key(namespace: ns, scope: feedback.scope, prompt: feedback.prompt), now: time, on: eventLoop)
                    }.map { _ in result }
                }
                // Not `ordered`: a verdict that waits for its namespace's lane (a large namespace,
                // a long prompt) holds this connection's next request back, so that a pipelined
                // LLM.GET does not serve the answer just judged bad (its written-back copy is
                // checked on the event loop).
                return ctx.reply(recorded, ordered: false, into: &out) { result, out in
                    guard case .success(let feedback) = result else { return Self.writeFailure(ns, result, &out) }
                    guard let feedback else { return out.writeRESPNullArray() }
                    out.writeRESPArrayHeader(6)
                    out.writeRESPBulk(feedback.prompt)
                    out.writeRESPDouble(Double(feedback.score))
                    out.writeRESPDouble(Double("\(feedback.threshold)") ?? Double(feedback.threshold))
                    out.writeRESPInteger(feedback.verdicts.good)
                    out.writeRESPInteger(feedback.verdicts.bad)
                    out.writeRESPInteger(feedback.deleted ? 1 : 0)
                }
            },
            Command("sem.del", arity: -2, summary: "SEM.DEL ns [prompt [SCOPE s]]: entries removed (no prompt: the whole namespace)") { ctx, out throws(CommandError) in
                let ns = try ctx.nextTextName("namespace")
                guard ctx.hasMore else {
                    return ctx.reply(store.drop(namespace: ns, on: ctx.eventLoop), into: &out) { result, out in
                        guard case .success(let n) = result else { return Self.writeFailure(ns, result, &out) }
                        out.writeRESPInteger(n)
                    }
                }
                let prompt = try Self.prompt(ctx.next())
                var scope = ""
                if ctx.hasMore {
                    guard try ctx.next().isKeyword("SCOPE"), ctx.hasMore else { throw CommandError.syntax }
                    scope = try ctx.nextTextName("scope")
                }
                guard !ctx.hasMore else { throw CommandError.syntax }
                return ctx.reply(store.delete(namespace: ns, prompt: prompt, scope: scope, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let removed) = result else { return Self.writeFailure(ns, result, &out) }
                    out.writeRESPInteger(removed ? 1 : 0)
                }
            },
            Command("sem.info", arity: 2, summary: "SEM.INFO ns: map of entries, dimension, embedder, min_score, max_entries, hits, misses, traps, evictions, expired, feedback_good, feedback_bad, lists") { ctx, out throws(CommandError) in
                guard let info = store.info(namespace: try ctx.nextTextName("namespace")) else {
                    out.writeRESPNullArray()
                    return .done
                }
                Self.writeInfo(info, &out)
                return .done
            },
            Command("sem.config", arity: -2, summary: "SEM.CONFIG ns [MINSCORE x] [MAXENTRIES n]: the namespace's info") { ctx, out throws(CommandError) in
                let ns = try ctx.nextTextName("namespace")
                var minScore: Float?, maxEntries: Int?
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("MINSCORE") {
                        minScore = try Self.score(try ctx.next())
                    } else if option.isKeyword("MAXENTRIES") {
                        let n = try ctx.nextInteger()
                        guard n >= 1, n <= 10_000_000 else { throw CommandError("MAXENTRIES must be 1 to 10000000") }
                        maxEntries = n
                    } else {
                        throw CommandError.syntax
                    }
                }
                return ctx.reply(store.configure(namespace: ns, minScore: minScore, maxEntries: maxEntries, on: ctx.eventLoop), into: &out) { result, out in
                    guard case .success(let info) = result else { return Self.writeFailure(ns, result, &out) }
                    Self.writeInfo(info, &out)
                }
            },
        ]
    }

    static func writeFailure<T>(_ ns: String, _ result: Result<T, SemanticFailure>, _ out: inout RESPWriter) {
        if case .failure(let failure) = result { out.writeRESPError(failureLine(ns, failure)) }
    }

    /// The error line (without '-') a semantic failure answers.
    static func failureLine(_ ns: String, _ failure: SemanticFailure) -> String {
        switch failure {
        case .embedderMismatch(let have, let got):
            return "ERR namespace '\(ns)' holds vectors of \(have) (embedder/dimension); this request's are \(got)"
        case .tooManyNamespaces(let limit):
            return "ERR too many semantic namespaces (at most \(limit))"
        case .store(let failure):
            return CommandError.notStored(failure).line
        case .full(let limit):
            return "ERR the semantic cache is full (\(limit) entries) and namespace '\(ns)' has none to give up; SEM.DEL some, or lower other namespaces' MAXENTRIES"
        case .busy:
            return "ERR busy: too many semantic searches are waiting; try again"
        case .unusableVector:
            return Self.unusableVector
        }
    }

    static func writeInfo(_ i: SemanticCache.Info, _ out: inout RESPWriter) {
        out.writeRESPMapHeader(13)
        out.writeRESPBulk("entries"); out.writeRESPInteger(i.entries)
        out.writeRESPBulk("dimension"); if let d = i.dimension { out.writeRESPInteger(d) } else { out.writeRESPNull() }
        out.writeRESPBulk("embedder"); if let e = i.embedder { out.writeRESPBulk(e) } else { out.writeRESPNull() }
        // Through the float's own shortest text, so 0.7 reads 0.7, not 0.699999988079071.
        out.writeRESPBulk("min_score"); out.writeRESPDouble(Double("\(i.minScore)") ?? Double(i.minScore))
        out.writeRESPBulk("max_entries"); out.writeRESPInteger(i.maxEntries)
        out.writeRESPBulk("hits"); out.writeRESPInteger(i.hits)
        out.writeRESPBulk("misses"); out.writeRESPInteger(i.misses)
        out.writeRESPBulk("traps"); out.writeRESPInteger(i.traps)
        out.writeRESPBulk("evictions"); out.writeRESPInteger(i.evictions)
        out.writeRESPBulk("expired"); out.writeRESPInteger(i.expired)
        out.writeRESPBulk("feedback_good"); out.writeRESPInteger(i.feedbackGood)
        out.writeRESPBulk("feedback_bad"); out.writeRESPInteger(i.feedbackBad)
        out.writeRESPBulk("lists"); out.writeRESPInteger(i.lists)
    }

    /// SCOPE, MINSCORE and VEC, in any order, plus what the command adds (`extra`).
    struct Options {
        var scope = ""
        var minScore: Float?
        var vector: [Float]?
        /// SEM.GET ... WHY: say why the best candidate was or was not served.
        var why = false

        static func parse(_ ctx: inout CommandContext, allowMinScore: Bool,
                          extra: (ByteBuffer, inout CommandContext) throws(CommandError) -> Bool) throws(CommandError) -> Options {
            var o = Options()
            var words = OptionWords()
            while ctx.hasMore {
                let option = try ctx.nextOption(&words)
                if allowMinScore && option.isKeyword("WHY") {
                    o.why = true
                    continue
                }
                guard ctx.hasMore else { throw CommandError.syntax }
                if option.isKeyword("SCOPE") {
                    o.scope = try ctx.nextTextName("scope")
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

        /// The client's vector, or the built-in embedder's for `text` (a ``prompt(_:)``: bounded),
        /// with the embedder's name.
        func vector(for text: String, _ embedder: TokenEmbedder?) throws(CommandError) -> ([Float], String) {
            if let v = vector { return (v, "client") }
            guard let embedder else { throw CommandError("the built-in embedder is not available on this server; send VEC") }
            guard let v = embedder.embed(text) else {
                throw CommandError("the prompt has no words to embed; send VEC for it")
            }
            return (v, embedder.version)
        }
    }

    /// VEC: little-endian float32, one per dimension (4 to 16,384 bytes).
    /// SEM.GET ... WHY: `[response|nil, score|nil, prompt|nil, why]`, `why` one of `hit`,
    /// `trap: <what differs>`, `below minscore <x>`, `no entry in this scope`.
    static func writeExplained(_ outcome: SemanticNamespace.Outcome, into out: inout RESPWriter) {
        out.writeRESPArrayHeader(4)
        switch outcome {
        case .hit(let m):
            out.writeRESPBulk(m.entry.response)
            out.writeRESPDouble(Double(m.score))
            out.writeRESPBulk(m.entry.prompt)
            out.writeRESPBulk("hit")
        case .trap(let m, let reason):
            out.writeRESPNull()
            out.writeRESPDouble(Double(m.score))
            out.writeRESPBulk(m.entry.prompt)
            out.writeRESPBulk("trap: " + reason)
        case .below(let m, let minScore):
            out.writeRESPNull()
            out.writeRESPDouble(Double(m.score))
            out.writeRESPBulk(m.entry.prompt)
            // The float's own shortest text: a learned threshold of 0.805 reads 0.805, not 0.81.
            out.writeRESPBulk("below minscore \(minScore)")
        case .miss:
            out.writeRESPNull()
            out.writeRESPNull()
            out.writeRESPNull()
            out.writeRESPBulk("no entry in this scope")
        }
    }

    /// WHY's text for an outcome (as SEM.GET ... WHY words it).
    static func why(_ outcome: SemanticNamespace.Outcome) -> String {
        switch outcome {
        case .hit: return "hit"
        case .trap(_, let reason): return "trap: " + reason
        case .below(_, let minScore): return "below minscore \(minScore)"
        case .miss: return "no entry in this scope"
        }
    }

    static let unusableVector = "ERR VEC's length overflows or underflows float32 (scale it to about 1)"

    /// Longest prompt SEM.SET and SEM.GET take.
    static let maxPromptBytes = 64 * 1024

    /// A prompt argument: at most ``maxPromptBytes`` (checked before anything reads it: prompts
    /// are compared word by word on every hit, and a bound keeps that cheap) and
    /// valid UTF-8 (prompts are compared as text; a repaired copy would make two prompts one).
    static func prompt(_ bytes: ByteBuffer) throws(CommandError) -> String {
        guard bytes.readableBytes <= maxPromptBytes else { throw CommandError("the prompt is longer than \(maxPromptBytes) bytes") }
        guard let text = bytes.validText else { throw CommandError("the prompt is not valid UTF-8 (semantic prompts are compared as text)") }
        return text
    }

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
        // A zero vector has no direction: nothing could ever be found by it.
        guard out.contains(where: { $0 != 0 }) else { throw CommandError("VEC must not be all zeros") }
        guard VectorIndex.normalisable(out) else { throw CommandError(String(Self.unusableVector.dropFirst(4))) }
        return out
    }

    static func score(_ b: ByteBuffer) throws(CommandError) -> Float {
        guard let x = b.doubleValue, x >= -1, x <= 1 else { throw CommandError("MINSCORE must be a number from -1 to 1") }
        return Float(x)
    }
}
