import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// LLM.GET / LLM.SET: one lookup through every layer, and one store into all of them.
///
/// LLM.GET asks the exact cache (L1, then L2) for the question's key (``LLMEntry/key``), then
/// the semantic layer with its verifier; a semantic hit is written back to the exact layers
/// for this prompt (so the next identical question is an L1 hit), and that copy remembers which
/// entry answered at what score: once the entry would no longer answer so (a bad verdict raised
/// its threshold, a newer answer replaced it), the copy is retired on its next read. On a full
/// miss the caller may take the question's one lease (as CACHE.GET ... LEASE), and with STALE an
/// answer expired within the window is served last of all.
///
/// LLM.SET writes the exact entry (fulfilling the lease) and then the semantic one; if the
/// semantic write fails the exact one is deleted again: both or neither.
struct LLMCommands: CommandGroup {
    let cache: any ExactCache
    let semantic: any SemanticStore
    let embedder: TokenEmbedder?
    let maxLease: Int64
    let counters: LLMCounters
    /// Longest key LLM.SET makes: what a request may carry (`--max-value-size`).
    var maxKeyBytes = 16 * 1024 * 1024

    /// Largest scratch buffer a connection keeps between LLM.GETs.
    static let maxKeptScratch = 16 * 1024
    static let scratchAllocator = ByteBufferAllocator()

    /// What LLM.GET found.
    enum Lookup: Sendable {
        case hit(answer: ByteBuffer, layer: StaticString, score: Double, matched: ByteBuffer, createdAt: Int64, lease: UInt64?, why: String)
        case miss(lease: UInt64?, why: String)
        case failed(String)
    }

    struct Request: Sendable {
        var ns: String, scope: String, key: ByteBuffer
        /// The prompt as sent (exact hits echo it), and as text for the semantic layer: nil when
        /// that layer cannot take it (longer than SEM.* takes, or not valid UTF-8 — a repaired
        /// copy would be another prompt's text).
        var promptBytes: ByteBuffer, prompt: String?
        var minScore: Float?, lease: Int64, stale: Int64
        var time: Timestamp
        /// WHY was asked: only then is a miss's reason spelled out (it formats the score).
        var explain: Bool
    }

    var commands: [Command] {
        // The hit path's parts captured one by one, as CACHE.GET's `cache` is: reached through
        // the whole struct, each request paid reference counting on its other fields.
        let group = self, cache = cache, counters = counters
        return [
            Command("llm.get", arity: -3, summary: "LLM.GET ns prompt [SCOPE s] [MINSCORE x] [LEASE ms] [STALE ms] [WHY]: [answer|nil, layer (l1|l2|semantic|stale|miss), score|nil, matched_prompt|nil, age_ms|nil, lease_token|nil] (+ why)") { ctx, out throws(CommandError) in
                // The namespace and the prompt as spans of the request frame: the hit path reads
                // them in place into the key, and slices them only when it goes further.
                let ns = try ctx.nextUTF8NameSpan("namespace"), prompt = try ctx.nextSpan()
                var scope: ByteBuffer?, minScore: Float?, lease: Int64 = 0, stale: Int64 = 0, why = false
                var words = OptionWords()
                while ctx.hasMore {
                    let option = try ctx.nextOption(&words)
                    if option.isKeyword("WHY") {
                        why = true
                        continue
                    }
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("SCOPE") {
                        scope = try ctx.nextUTF8Name("scope")
                    } else if option.isKeyword("MINSCORE") {
                        minScore = try SemanticCommands.score(try ctx.next())
                    } else if option.isKeyword("LEASE") {
                        let ms = try ctx.nextInteger()
                        guard ms > 0, Int64(ms) <= group.maxLease else { throw CommandError("LEASE must be between 1 and \(group.maxLease) ms") }
                        lease = Int64(ms)
                    } else if option.isKeyword("STALE") {
                        let ms = try ctx.nextInteger()
                        guard ms >= 0, Int64(ms) <= RichCacheCommands.maxStale else {
                            throw CommandError("STALE must be between 0 and \(RichCacheCommands.maxStale) ms")
                        }
                        stale = Int64(ms)
                    } else {
                        throw CommandError.syntax
                    }
                }
                // A key LLM.SET would refuse (see there) is never stored: a miss, and no lease —
                // one its holder could not fulfil would only keep the others waiting.
                let keyLength = LLMEntry.keyLength(namespace: ns.count, scope: scope?.readableBytes ?? 0, prompt: prompt.count)
                if keyLength > group.maxKeyBytes {
                    counters.misses.add(1, ordering: .relaxed)
                    Self.write(.miss(lease: nil, why: why ? group.tooLong(keyLength) : ""), now: ctx.now, why: why, into: &out)
                    return .done
                }
                // Built in the writer's scratch buffer (taken out while in use, so that it is
                // the only reference and is written in place; handed back below).
                var key = Self.scratchKey(&out.scratch, length: keyLength)
                ctx.arguments.withFrameBytes { frame in
                    let nsBytes = frame.rebased(ns), promptBytes = frame.rebased(prompt)
                    if let scope {
                        scope.withUnsafeReadableBytes { Self.writeKey(namespace: nsBytes, scope: $0, prompt: promptBytes, length: keyLength, into: &key) }
                    } else {
                        Self.writeKey(namespace: nsBytes, scope: nil, prompt: promptBytes, length: keyLength, into: &key)
                    }
                }
                // The capability's own method (stale 0), not the convenience that forwards to it.
                let first = cache.read(key, lease: lease, stale: 0, now: ctx.time, on: ctx.eventLoop)
                // The hot path — an answer LLM.SET stored for this very prompt, in L1 — is written
                // straight from the entry's bytes, as CACHE.GET's hit is: no String, no copy (the
                // read is borrowed, not taken apart), the prompt echoed from the key's tail.
                if let layer = key.withUnsafeReadableBytes({ keyBytes in
                    Self.writeDirectHit(first, matched: keyBytes.rebased(from: keyBytes.count - prompt.count),
                                        now: ctx.now, why: why, into: &out)
                }) {
                    // Tallied on the connection, reported once per read batch (see Session) — but
                    // not once it has gone (EXEC's commands may run after): nothing reports then.
                    // The context borrows the session (unowned(unsafe)); so does this.
                    if layer == .l1 {
                        Unmanaged.passUnretained(ctx.session)._withUnsafeGuaranteedRef { session in
                            if !session.leaving { session.llmL1Hits &+= 1 } else { Self.count(layer, counters) }
                        }
                    } else {
                        Self.count(layer, counters)
                    }
                    Self.keep(consume key, as: &out.scratch)
                    return .done
                }
                let nsText = ctx.arguments.slice(ns).text, promptBytes = ctx.arguments.slice(prompt)
                let request = Request(ns: nsText, scope: scope?.text ?? "", key: key, promptBytes: promptBytes,
                                      prompt: promptBytes.readableBytes <= SemanticCommands.maxPromptBytes ? promptBytes.validText : nil,
                                      minScore: minScore, lease: lease, stale: stale, time: ctx.time, explain: why)
                let found = group.lookup(request, first: first, on: ctx.eventLoop)
                // Handed back as on a hit: an answer already here has let go of the key, and the
                // next LLM.GET writes in place. (An answer still to come holds it too, but then
                // this writer is not the next one's: the connection gives later requests a fresh
                // writer until the answer is in. Were it the same, copy-on-write would keep the
                // key in flight intact.)
                Self.keep(consume key, as: &out.scratch)
                return ctx.reply(found, passing: (ctx.now, why), into: &out) { found, reply, out in
                    Self.write(found, now: reply.0, why: reply.1, into: &out)
                }
            },
            Command("llm.set", arity: -4, summary: "LLM.SET ns prompt answer [PX ms | EX s] [SCOPE s] [TOKENS n] [COST c] [TAG t] [LEASE token]: +OK (exact and semantic layers, or neither)") { ctx, out throws(CommandError) in
                let ns = try ctx.nextUTF8Name("namespace"), prompt = try ctx.next(), nsText = ns.text
                let answer = ByteBuffer.owned(try ctx.next())
                var scope = ByteBuffer(), scopeText = ""
                let (meta, condition) = try RichCacheCommands.writeOptions(&ctx, command: "llm.set") { option, ctx throws(CommandError) -> Bool in
                    guard option.isKeyword("SCOPE") else { return false }
                    scope = try ctx.nextUTF8Name("scope")
                    scopeText = scope.text
                    return true
                }
                let worth = AnswerWorth(tokens: meta.tokens, cost: meta.cost, tag: meta.tag)
                // Embedded before anything is written. A prompt the semantic layer cannot index (no
                // words, longer than it takes, no embedder) is stored in the exact layers alone —
                // LLM.GET skips the semantic layer for it too.
                // (Nor one that is not valid UTF-8: the semantic layer compares text.) The exact
                // key is the bytes as sent.
                let text = prompt.readableBytes <= SemanticCommands.maxPromptBytes ? prompt.validText : nil
                let write = text.flatMap { text in
                    group.embeddable(text).map { vector, version in
                        SemanticWrite(namespace: nsText, scope: scopeText, prompt: text, response: answer, embedder: version, vector: vector,
                                      createdAt: meta.createdAt, expiresAt: meta.expiresAt, worth: worth)
                    }
                }
                // Every key must be one a client can name (DEL, GET, CACHE.GET of `llm:...`): a
                // prompt within the bulk limit made a key over it, stored and then unreachable.
                let keyLength = LLMEntry.keyLength(namespace: ns.readableBytes, scope: scope.readableBytes, prompt: prompt.readableBytes)
                guard keyLength <= group.maxKeyBytes else { throw CommandError(group.tooLong(keyLength)) }
                let key = LLMEntry.key(namespace: ns, scope: scope, prompt: prompt)
                // Not `ordered`: in shared mode the semantic write follows Redis's answer to the
                // exact one, so the connection's next request waits for it — a pipelined LLM.GET
                // of a rewording, or a SEM.DEL of the prompt, must see the new entry.
                return ctx.reply(group.store(key, LLMEntry(answer: answer).encoded(), meta: meta, condition: condition, semantic: write,
                                             time: ctx.time, on: ctx.eventLoop), ordered: false, into: &out) { result, out in
                    switch result {
                    case .success: out.writeRESPOK()
                    case .failure(let error): out.writeRESPError(error.line)
                    }
                }
            },
        ]
    }

    // MARK: LLM.GET

    /// The connection's scratch buffer, emptied, to build a key of `length` bytes in; a new one
    /// at that size when there is none (one allocation, not one grown by realloc).
    @inline(__always)
    static func scratchKey(_ scratch: inout ByteBuffer?, length: Int) -> ByteBuffer {
        var key = scratch.take() ?? scratchAllocator.buffer(capacity: max(length, 64))
        key.clear()
        return key
    }

    /// Hands a key built by ``scratchKey(_:length:)`` back as the next scratch, unless a huge
    /// prompt grew it: a connection does not hold megabytes for the rest of its life.
    @inline(__always)
    static func keep(_ key: consuming ByteBuffer, as scratch: inout ByteBuffer?) {
        if key.capacity <= maxKeptScratch { scratch = key }
    }

    func lookup(_ r: Request, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        lookup(r, first: cache.read(r.key, lease: r.lease, now: r.time, on: eventLoop), on: eventLoop)
    }

    /// `first`: the exact layers' answer for the question's key.
    func lookup(_ r: Request, first: Deferred<CacheRead>, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        // Spelled out, not `first.flatMap`: its closure (and the request copied into it) is
        // allocated before it is known which way the answer comes, so a ready answer (every
        // embedded one) paid for it too. With the semantic step's, that was a tenth of a miss
        // that the semantic layer answers cheaply, in `perf`.
        switch first {
        case .ready(let read):
            return afterExact(read, r, on: eventLoop)
        case .later(let future):
            return .later(future.flatMap { [self] read in afterExact(read, r, on: eventLoop).future(on: eventLoop) })
        }
    }

    /// What to answer once the exact layers answered `read`.
    func afterExact(_ read: CacheRead, _ r: Request, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        switch read {
        case .miss(let token):
            return afterExactMiss(r, lease: token, on: eventLoop)
        case .hit(_, let meta, _) where meta.kind != .string:
            return .ready(.failed(KeyOperationReply.wrongTypeLine))
        case .hit(let value, let meta, let layer):
            let entry = LLMEntry.decode(value.bytes)
            guard let source = entry.source else {
                Self.count(layer, counters)
                return .ready(.hit(answer: entry.answer, layer: Self.name(layer), score: 1,
                                   matched: r.promptBytes, createdAt: meta.createdAt, lease: nil, why: "exact"))
            }
            // A copy answers at the score its entry did, so not a caller who asks for more
            // (MINSCORE): the semantic layer would not have served it to them either. Without
            // a lease the copy is passed over, not deleted: it still answers everyone else, and
            // deleting it would only thrash with laxer callers writing it back. A caller who
            // asks for the lease retires it (below), or it would wait for a lease nobody holds:
            // the copy's key is not missing, so no miss would grant one.
            if let minScore = r.minScore, source.score < minScore {
                return r.lease > 0 ? retire(r, on: eventLoop) : afterExactMiss(r, lease: nil, on: eventLoop)
            }
            guard semantic.stillAnswers(namespace: r.ns, scope: r.scope, prompt: source.prompt, createdAt: source.createdAt, answer: entry.answer,
                                        score: source.score, minScore: r.minScore, query: r.prompt, now: r.time.wall) else {
                // Only this reader's bar refuses it — the entry, its answer and its verdicts would
                // still give it at its own score (a laxer reader made it): passed over as above,
                // or readers with different bars would delete and write it in turn.
                if r.lease == 0, semantic.stillAnswers(namespace: r.ns, scope: r.scope, prompt: source.prompt, createdAt: source.createdAt,
                                                       answer: entry.answer, score: source.score, minScore: source.score, query: nil,
                                                       now: r.time.wall) {
                    return afterExactMiss(r, lease: nil, on: eventLoop)
                }
                // Its entry no longer answers so: retire the copy, and look again below it.
                return retire(r, on: eventLoop)
            }
            Self.count(layer, counters)
            return .ready(.hit(answer: entry.answer, layer: Self.name(layer), score: Double(source.score),
                               matched: ByteBuffer(string: source.prompt), createdAt: meta.createdAt, lease: nil, why: "hit"))
        }
    }

    /// A written-back copy that does not answer this caller is deleted, and the question asked
    /// again below the exact layers (with the lease, when the caller asks for one).
    func retire(_ r: Request, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        // Unless a lease is held on the key: then a concurrent reader retired it first and
        // holds the question's lease, which a delete would end.
        cache.deleteUnlessLeased(r.key, now: r.time, on: eventLoop).flatMap { [self] deleted in
            if case .success(true) = deleted { counters.backfillsRetired.add(1, ordering: .relaxed) }
            let again = r.lease > 0 ? cache.read(r.key, lease: r.lease, now: r.time, on: eventLoop) : .ready(CacheRead.miss(lease: nil))
            return again.flatMap { [self] read in
                guard case .miss(let token) = read else {
                    // Stored meanwhile (or the copy could not be deleted): look again, without
                    // asking for the lease twice.
                    var again = r
                    again.lease = 0
                    return lookup(again, on: eventLoop)
                }
                return afterExactMiss(r, lease: token, on: eventLoop)
            }
        }
    }

    /// The built-in embedder's vector for `prompt`, or nil when the semantic layer cannot take
    /// it (no words, longer than SEM.* takes, no embedder).
    func embeddable(_ prompt: String) -> ([Float], String)? {
        guard let embedder, prompt.utf8.count <= SemanticCommands.maxPromptBytes, let vector = embedder.embed(prompt) else { return nil }
        return (vector, embedder.version)
    }

    /// The layer's name in replies (a StaticString: written without building a String).
    static func name(_ layer: CacheLayer) -> StaticString {
        switch layer {
        case .l1: return "l1"
        case .l2: return "l2"
        case .stale: return "stale"
        }
    }

    static func count(_ layer: CacheLayer, _ counters: LLMCounters) {
        switch layer {
        case .l1: counters.l1Hits.add(1, ordering: .relaxed)
        case .l2: counters.l2Hits.add(1, ordering: .relaxed)
        case .stale: counters.staleHits.add(1, ordering: .relaxed)
        }
    }

    /// The exact layers missed (`lease`: the token this caller was granted, if it asked and got one).
    func afterExactMiss(_ r: Request, lease: UInt64?, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        guard let prompt = r.prompt, let (vector, version) = embeddable(prompt) else {
            // Nothing the semantic layer could have indexed: the exact layers' answer stands.
            return staleOrMiss(r, lease: lease, why: "not in the exact layers; the semantic layer cannot index this prompt", on: eventLoop)
        }
        let query = SemanticQuery(namespace: r.ns, prompt: prompt, scope: r.scope, minScore: r.minScore, embedder: version, vector: vector)
        // As in `lookup`: no closure for a ready answer.
        switch semantic.get(query, now: r.time.wall, on: eventLoop) {
        case .ready(let result):
            return afterSemantic(result, r, lease: lease, on: eventLoop)
        case .later(let future):
            return .later(future.flatMap { [self] result in afterSemantic(result, r, lease: lease, on: eventLoop).future(on: eventLoop) })
        }
    }

    /// What to answer once the semantic layer answered `result` (the exact layers missed).
    func afterSemantic(_ result: Result<SemanticNamespace.Outcome, SemanticFailure>, _ r: Request, lease: UInt64?,
                       on eventLoop: any EventLoop) -> Deferred<Lookup> {
        let outcome: SemanticNamespace.Outcome
        switch result {
        case .failure(let failure):
            let line = SemanticCommands.failureLine(r.ns, failure)
            // A caller that asked for the lease keeps to the lease's protocol: a lease granted by
            // the exact layers' miss is this caller's to fulfil (an error would drop its token,
            // and every other caller would wait for nobody until it ran out), and a caller that
            // was not granted one waits for its holder. So it is a miss, carrying the token if
            // this caller holds it (WHY says what failed).
            guard r.lease > 0 else { return .ready(.failed(line)) }
            return staleOrMiss(r, lease: lease, why: r.explain ? "the semantic layer could not answer: " + line : "", on: eventLoop)
        case .success(let o): outcome = o
        }
        guard case .hit(let m) = outcome else {
            return staleOrMiss(r, lease: lease, why: r.explain ? SemanticCommands.why(outcome) : "", on: eventLoop)
        }
        counters.semanticHits.add(1, ordering: .relaxed)
        let hit = Lookup.hit(answer: m.entry.response, layer: "semantic", score: Double(m.score), matched: ByteBuffer(string: m.entry.prompt),
                             createdAt: m.entry.createdAt, lease: nil, why: "hit")
        // Another caller holds the question's lease: its LLM.SET will store the answer.
        if r.lease > 0 && lease == nil { return .ready(hit) }
        // The store's write queue is past its bound: a copy made by a read would only grow
        // it (the answer is served all the same; the next identical question asks again) —
        // unless this caller holds the lease: its copy is the answer the others wait for.
        guard lease != nil || cache.takesOptionalWrites else {
            counters.backfillsSkipped.add(1, ordering: .relaxed)
            return .ready(hit)
        }
        let copy = LLMEntry(answer: m.entry.response, source: LLMEntry.Source(prompt: m.entry.prompt, createdAt: m.entry.createdAt, score: m.score))
        let meta = EntryMeta(createdAt: m.entry.createdAt, expiresAt: m.entry.expiresAt, tokens: m.entry.worth.tokens, cost: m.entry.worth.cost,
                             tag: m.entry.worth.tag)
        counters.backfills.add(1, ordering: .relaxed)
        // Answered once the copy is written (the next identical question finds it), whatever became of it.
        // A copy goes only where the key holds nothing (an answer LLM.SET stored since this
        // caller looked stays), and never ends a lease another caller holds (a stricter
        // caller, whose LLM.SET would then be refused): the holder stores the answer.
        return cache.write(r.key, value: copy.encoded(), meta: meta, condition: .copy(lease: lease ?? 0),
                           now: r.time, on: eventLoop).map { _ in hit }
    }

    /// Nothing fresh anywhere: an answer expired within STALE, else a miss (with the lease).
    func staleOrMiss(_ r: Request, lease: UInt64?, why: String, on eventLoop: any EventLoop) -> Deferred<Lookup> {
        guard r.stale > 0 else {
            counters.misses.add(1, ordering: .relaxed)
            return .ready(.miss(lease: lease, why: why))
        }
        return cache.read(r.key, lease: 0, stale: r.stale, now: r.time, on: eventLoop).map { [counters] read in
            guard case .hit(let value, let meta, let layer) = read, meta.kind == .string else {
                counters.misses.add(1, ordering: .relaxed)
                return .miss(lease: lease, why: why)
            }
            let entry = LLMEntry.decode(value.bytes)
            // Only an answer stored for this very prompt: a written-back copy is checked against
            // its entry before it answers, and an expired one has no entry to check it against
            // (a bad verdict since would not show); nor is a live one that got here (written
            // meanwhile, or one a retirement could not delete) served unchecked.
            guard entry.source == nil else {
                counters.misses.add(1, ordering: .relaxed)
                return .miss(lease: lease, why: why)
            }
            Self.count(layer, counters)
            return .hit(answer: entry.answer, layer: Self.name(layer), score: 1, matched: r.promptBytes, createdAt: meta.createdAt,
                        lease: lease, why: layer == .stale ? "stale" : "exact")
        }
    }

    /// Why a prompt whose key would be longer than a request may carry is not stored.
    func tooLong(_ keyLength: Int) -> String {
        "prompt too long: its key would be \(keyLength) bytes, more than a request may carry (--max-value-size \(maxKeyBytes))"
    }

    /// The question's key (``LLMEntry``), `length` bytes (``LLMEntry/keyLength(namespace:scope:prompt:)``),
    /// appended to `key` in one reservation.
    @inline(__always)
    static func writeKey(namespace: UnsafeRawBufferPointer, scope: UnsafeRawBufferPointer?, prompt: UnsafeRawBufferPointer, length: Int,
                         into key: inout ByteBuffer) {
        key.writeReserved(minimumWritableBytes: length) {
            LLMEntry.writeKey(namespace: namespace, scope: scope, prompt: prompt, into: $0)
        }
    }

    /// A hit's reply: `[answer, layer, score, matched_prompt, age_ms, lease|nil]` (+ why).
    @inlinable
    static func writeHit<Answer: Collection, Matched: Collection>(_ answer: Answer, layer: StaticString, score: Double, matched: Matched, age: Int64,
                                                                  lease: UInt64?, why: String?, into out: inout RESPWriter)
        where Answer.Element == UInt8, Matched.Element == UInt8 {
        out.writeRESPArrayHeader(why == nil ? 6 : 7)
        out.writeRESPBulk(bytes: answer)
        out.writeRESPBulk(bytes: UnsafeRawBufferPointer(start: layer.utf8Start, count: layer.utf8CodeUnitCount))
        // 1 (an exact answer) without formatting a Double, as writeRESPDouble would print it.
        if score == 1 { out.writeStaticString(out.version == .resp3 ? ",1.0\r\n" : "$3\r\n1.0\r\n") } else { out.writeRESPDouble(score) }
        out.writeRESPBulk(bytes: matched)
        out.writeRESPInteger(Int(max(age, 0)))
        if let lease { out.writeRESPBulk(String(lease)) } else { out.writeRESPNull() }
        if let why { out.writeRESPBulk(why) }
    }

    /// The hit reply for an entry LLM.SET stored for this very prompt, from the cache's bytes:
    /// `[answer, layer, 1, prompt, age_ms, nil]` (+ "exact"), written into space reserved once;
    /// the layer it came from. nil (nothing written): not such a hit — a miss, a stale or other
    /// entry, or a copy written back after a semantic hit, which must be checked against its
    /// entry first.
    ///
    /// The read is borrowed: binding the value out of an owned one copied it (a retain and a
    /// release per hit).
    @inline(__always)
    static func writeDirectHit(_ read: borrowing Deferred<CacheRead>, matched prompt: UnsafeRawBufferPointer, now: Int64, why: Bool,
                               into out: inout RESPWriter) -> CacheLayer? {
        // A switch borrows where `if case` / `guard case` would consume.
        switch read {
        case .ready(.hit(let value, let meta, let layer)) where meta.kind == .string && layer != .stale:
            return writeDirectHit(value, meta: meta, layer: layer, matched: prompt, now: now, why: why, into: &out) ? layer : nil
        default:
            return nil
        }
    }

    @inline(__always)
    static func writeDirectHit(_ value: borrowing CachedValue, meta: EntryMeta, layer: CacheLayer, matched prompt: UnsafeRawBufferPointer,
                               now: Int64, why: Bool, into out: inout RESPWriter) -> Bool {
        let age = now.subtractingSaturating(meta.createdAt)
        let resp3 = out.version == .resp3
        return value.withUnsafeValueBytes { stored -> Bool in
            guard let offset = LLMEntry.directAnswerOffset(stored) else { return false }
            let answer = stored.rebased(from: offset)
            // Items: header 4, answer +25, layer and score 17, prompt +25, age 23, null 5, why 11.
            out.buffer.writeReserved(minimumWritableBytes: answer.count + prompt.count + 110) { space in
                var c = RESPRawCursor(space)
                c.put(why ? "*7\r\n" : "*6\r\n")
                c.putBulk(answer)
                // The layer and the score (1: the same prompt) as one literal per layer and version.
                switch (layer, resp3) {
                case (.l2, true): c.put("$2\r\nl2\r\n,1.0\r\n")
                case (.l2, false): c.put("$2\r\nl2\r\n$3\r\n1.0\r\n")
                case (_, true): c.put("$2\r\nl1\r\n,1.0\r\n")
                case (_, false): c.put("$2\r\nl1\r\n$3\r\n1.0\r\n")
                }
                c.putBulk(prompt)
                c.putInteger(Int(max(age, 0)))
                c.put(resp3 ? "_\r\n" : "$-1\r\n")
                if why { c.put("$5\r\nexact\r\n") }
                return c.count
            }
            return true
        }
    }

    static func write(_ found: Lookup, now: Int64, why: Bool, into out: inout RESPWriter) {
        switch found {
        case .failed(let line):
            out.writeRESPError(line)
        case .hit(let answer, let layer, let score, let matched, let createdAt, let lease, let reason):
            writeHit(answer.readableBytesView, layer: layer, score: score, matched: matched.readableBytesView, age: now.subtractingSaturating(createdAt),
                     lease: lease, why: why ? reason : nil, into: &out)
        case .miss(let lease, let reason):
            out.writeRESPArrayHeader(why ? 7 : 6)
            out.writeRESPNull()
            out.writeRESPBulk("miss")
            out.writeRESPNull()
            out.writeRESPNull()
            out.writeRESPNull()
            if let lease { out.writeRESPBulk(String(lease)) } else { out.writeRESPNull() }
            if why { out.writeRESPBulk(reason) }
        }
    }

    // MARK: LLM.SET

    /// The exact entry (its lease decides), then the semantic one; the exact one deleted again
    /// if the semantic write fails.
    func store(_ key: ByteBuffer, _ value: ByteBuffer, meta: EntryMeta, condition: WriteCondition, semantic entry: SemanticWrite?,
               time: Timestamp, on eventLoop: any EventLoop) -> Deferred<Result<Void, CommandError>> {
        cache.write(key, value: value, meta: meta, condition: condition, now: time, on: eventLoop).flatMap { [self] written in
            switch written {
            case .leaseRefused: return .ready(.failure(RichCacheCommands.leaseRefused))
            case .notStored: return .ready(.failure(CommandError("the exact layer did not store the answer")))
            case .failed(let failure): return .ready(.failure(CommandError.notStored(failure)))
            case .stored: break
            }
            guard let entry else {
                counters.sets.add(1, ordering: .relaxed)
                return .ready(.success(()))
            }
            return semantic.set(entry, on: eventLoop).flatMap { [self] result in
                switch result {
                case .success:
                    counters.sets.add(1, ordering: .relaxed)
                    return .ready(.success(()))
                case .failure(let failure):
                    let why = SemanticCommands.failureLine(entry.namespace, failure)
                    return cache.delete([key], now: time, on: eventLoop).map { deleted in
                        guard case .failure(let undo) = deleted else { return .failure(CommandError(line: why + " (LLM.SET stored neither layer)")) }
                        // Said as it is: the exact entry may still answer.
                        return .failure(CommandError(line: why + " (LLM.SET stored the exact layer only, and could not take it back: \(undo.reason))"))
                    }
                }
            }
        }
    }
}
