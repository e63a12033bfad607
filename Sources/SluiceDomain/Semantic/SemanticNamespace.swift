import DequeModule
import NIOCore

/// One semantic-cache namespace: prompts with their responses, found by cosine similarity of
/// their vectors. Namespaces never see each other's entries; within one, a `scope` (e.g. a hash
/// of model + temperature + system prompt) is an exact-match filter.
///
/// A namespace is tied to the first embedder (and so dimension) that writes to it: vectors of
/// two embedders are never compared. It holds at most `maxEntries` (oldest evicted first).
/// A plain value; the caller holds the lock and passes `now`.
public struct SemanticNamespace: Sendable {
    public struct Entry: Sendable, Hashable {
        public var prompt: String
        public var response: ByteBuffer
        public var scope: String
        public var createdAt: Int64
        /// 0 = never.
        public var expiresAt: Int64
        /// What `SEM.FEEDBACK` taught this entry (nil: no verdict yet): see ``Verdicts``.
        public var verdicts: Verdicts? = nil
        /// Tokens and cost a hit on it saves, and their tag.
        public var worth = AnswerWorth.none

        public func isExpired(at now: Int64) -> Bool { expiresAt != 0 && expiresAt <= now }

        /// What the entry costs in memory, roughly: its texts, its vector, and per-entry
        /// overhead (maps, index row, order).
        func bytes(dimension: Int) -> Int { prompt.utf8.count + response.readableBytes + scope.utf8.count + dimension * 4 + 160 }
    }

    public struct Match: Sendable, Hashable {
        public var entry: Entry
        public var score: Float
    }

    /// How many candidates the index proposes for re-ranking and verification.
    public static let candidates = 8
    /// How many of them (best re-ranked first) the verifier looks at, at most.
    public static let verified = 4

    public enum Outcome: Sendable, Hashable {
        case hit(Match)
        /// Nothing in this scope.
        case miss
        /// The best candidate scored below the minimum (which is given).
        case below(Match, minScore: Float)
        /// The best candidate passed the score but the verifier refused it, saying why.
        case trap(Match, reason: String)
    }

    public struct Counters: Sendable, Hashable {
        public var evictions = 0, expired = 0
    }

    public private(set) var embedder: String?
    var index: VectorIndex?
    var entries: [UInt64: Entry] = [:]
    /// (scope, prompt), as bytes → id: the same prompt in the same scope replaces its entry.
    var byPrompt: [EntryKey: UInt64] = [:]
    var order = Deque<UInt64>()
    var nextID: UInt64 = 1
    public var maxEntries: Int
    /// Entries from which the index is partitioned (``VectorIndex/listsFrom``; tests lower it).
    var partitionFrom = VectorIndex.listsFrom
    /// Per-namespace default for MINSCORE (nil: the server's default).
    public var minScore: Float?
    public var counters = Counters()
    /// Memory the entries take (``Entry/bytes(dimension:)`` summed).
    public private(set) var bytes = 0
    /// How many live entries have a long prompt (``isLong(_:)``): a lookup may read
    /// theirs as candidates. Counted, not a flag set once: at 1 KiB most LLM namespaces take
    /// such a prompt now and then, and one evicted long ago kept every lookup off the loop.
    public private(set) var longPrompts = 0
    /// Whether a lookup here may read a long prompt as a candidate (see ``longPrompts``).
    public var holdsLongPrompts: Bool { longPrompts > 0 }
    /// Prompts longer than this take the verifier a millisecond or more to read, so lookups
    /// that read them run on a lane, not on an event loop (see
    /// ``SemanticCache/offloadHints(_:)``). Measured: 1–4 KB pairs took 1.2–2.5 ms each (it
    /// was 4 KiB, and four clients pipelining 3.9 KB lookups held a PING for 54 ms).
    public static let longPromptBytes = 1024

    /// Whether the verifier takes about a millisecond or more to read `prompt`, so that a lookup
    /// reading it belongs on a lane: over ``longPromptBytes``, or over a quarter of that when it
    /// is not ASCII — such text is read through Unicode properties, not the byte paths, and
    /// 256 bytes of accented words cost what 1 KiB of ASCII does (0.75 against 0.93 ms a
    /// lookup against eight near copies; 1 KiB of accented words, 3.2 ms).
    @inlinable
    public static func isLong(_ prompt: String) -> Bool {
        let n = prompt.utf8.count
        if n > longPromptBytes { return true }
        if n <= longPromptBytes / 4 { return false }
        return !ASCIIBytes.all(prompt.utf8)
    }

    public init(maxEntries: Int) {
        self.maxEntries = max(maxEntries, 1)
    }

    public var count: Int { entries.count }
    public var dimension: Int? { index?.dimension }
    /// Whether the index searches through inverted lists (and how many).
    public var listCount: Int { index?.listCount ?? 0 }

    /// Empties the namespace and unbinds it from its embedder, keeping its configuration and
    /// its counters: the shared stream bound it otherwise (see `StreamBindings`).
    public mutating func unbind() {
        var fresh = SemanticNamespace(maxEntries: maxEntries)
        fresh.partitionFrom = partitionFrom
        fresh.minScore = minScore
        fresh.counters = counters
        self = fresh
    }

    /// Installs the lists ``SemanticCache`` built (see `VectorIndex+Lists.swift`).
    mutating func finishPartition(_ builder: VectorIndex.ListBuilder) { index?.finishPartition(builder) }

    /// Where ``byPrompt`` finds an entry: its scope and its prompt as bytes (``ExactText``), as the
    /// file and Redis key them — a pair, not one string: `scope + "\0" + prompt` made scope
    /// "a\0b" with prompt "c" and scope "a" with prompt "b\0c" one entry, and the second write
    /// deleted the first.
    struct EntryKey: Hashable, Sendable {
        var scope: ExactText
        var prompt: ExactText
    }

    static func key(_ prompt: String, _ scope: String) -> EntryKey { EntryKey(scope: ExactText(scope), prompt: ExactText(prompt)) }

    /// The index's tag for a scope.
    /// Of its bytes, as scopes are compared: a tag of the `String` was one for canonically
    /// equivalent scopes, and one's entries could crowd the other's out of the candidates.
    static func tag(_ scope: String) -> UInt64 { UInt64(bitPattern: Int64(ExactText(scope).hashValue)) }

    /// An entry evicted to make room (its persisted copy is to be deleted too).
    public struct Eviction: Sendable, Hashable {
        public var scope: String
        public var prompt: String
    }

    /// Stores (or replaces) the entry for `prompt` in `scope`, evicting the oldest past
    /// `maxEntries`. `cacheFull`: the whole cache is at its bound (this value): a new entry may
    /// only take the place of this namespace's oldest, and an empty namespace cannot grow.
    /// Returns the entries evicted.
    public mutating func set(_ prompt: String, response: ByteBuffer, vector: [Float], embedder: String, scope: String,
                             createdAt: Int64, expiresAt: Int64, worth: AnswerWorth = .none, cacheFull: Int? = nil,
                             bytesToFree: Int = 0) -> Result<[Eviction], SemanticFailure> {
        // An empty vector (only a tampered file or stream can hold one: the edge refuses it)
        // would make an index of no dimension.
        guard !vector.isEmpty else { return .failure(.unusableVector) }
        if let mine = self.embedder, mine != embedder || index?.dimension != vector.count {
            return .failure(.embedderMismatch(namespace: "\(mine)/\(index?.dimension ?? 0)", request: "\(embedder)/\(vector.count)"))
        }
        if self.embedder == nil {
            self.embedder = embedder
            index = VectorIndex(dimension: vector.count)
            index?.partitionFrom = partitionFrom
        }
        // A vector whose length overflows or underflows float32 cannot be normalised: refused
        // before anything changes (the client's VEC is checked at the edge too).
        guard VectorIndex.normalisable(vector) else { return .failure(.unusableVector) }
        let key = Self.key(prompt, scope)
        let replacing = byPrompt[key]
        var limit = maxEntries
        if let cacheFull, replacing == nil {
            guard !entries.isEmpty else { return .failure(.full(limit: cacheFull)) }
            limit = min(limit, entries.count)
        }
        // Over the cache's memory bound: this namespace frees what the new entry needs, oldest
        // first (its own old copy counts), or the write is refused when it has not that much.
        if bytesToFree > 0 && bytesToFree > bytes {
            return .failure(.full(limit: cacheFull ?? entries.count))
        }
        let bytesBefore = bytes
        if let replacing { remove(id: replacing) }
        var evicted: [Eviction] = []
        while entries.count >= limit || bytesBefore - bytes < bytesToFree, let oldest = order.popFirst() {
            if let e = entries[oldest] {
                remove(id: oldest)
                counters.evictions += 1
                evicted.append(Eviction(scope: e.scope, prompt: e.prompt))
            }
        }
        let id = nextID
        nextID += 1
        guard index!.upsert(id: id, vector: vector, tag: Self.tag(scope), expiresAt: expiresAt) else { return .success(evicted) }  // zero vector: nothing to find it by
        let entry = Entry(prompt: prompt, response: response, scope: scope, createdAt: createdAt, expiresAt: expiresAt, worth: worth)
        entries[id] = entry
        if Self.isLong(prompt) { longPrompts += 1 }
        bytes += entry.bytes(dimension: vector.count)
        byPrompt[key] = id
        order.append(id)
        return .success(evicted)
    }

    /// The entry that answers `prompt` in `scope`, in two stages. The index proposes the
    /// ``candidates`` nearest by cosine; those at or above their threshold (`minScore`, or the
    /// entry's own after feedback: ``Verdicts``) are re-ranked by cosine plus how alike they look
    /// (``SurfaceSimilarity``), and the verifier decides, best first, whether one asks the same
    /// thing as `prompt` (at most ``verified`` are looked at). When none reaches its threshold
    /// and `rewordings` is set, candidates a little under it that reword `prompt` in synonyms
    /// are judged instead (``rewordings``); if the verifier refuses them all, the outcome is
    /// still `.below`. Reads only: many searches may run at once.
    public func get(_ prompt: String, vector: [Float], embedder: String, scope: String, minScore: Float,
                    now: Int64, verifier: PromptVerifier? = nil, rewordings: Bool = false) -> Result<Outcome, SemanticFailure> {
        lookup(prompt, vector: vector, embedder: embedder, scope: scope, minScore: minScore, now: now, verifier: verifier,
               rewordings: rewordings).map(\.outcome)
    }

    /// ``get`` with the id of the entry that answered (for feedback).
    func lookup(_ prompt: String, vector: [Float], embedder: String, scope: String, minScore: Float,
                now: Int64, verifier: PromptVerifier?, rewordings: Bool = false) -> Result<(outcome: Outcome, id: UInt64?), SemanticFailure> {
        guard let index else { return .success((.miss, nil)) }
        guard self.embedder == embedder, index.dimension == vector.count else {
            return .failure(.embedderMismatch(namespace: "\(self.embedder ?? "?")/\(index.dimension)", request: "\(embedder)/\(vector.count)"))
        }
        // The same prompt in the same scope is the same question, whatever its neighbours: found
        // by its text, not by a search that near-duplicates (or identical client vectors) could
        // crowd it out of (an attacker's finding). Its own threshold still applies (feedback).
        if let id = byPrompt[Self.key(prompt, scope)], let e = entries[id], !e.isExpired(at: now),
           let score = index.score(id: id, vector), score >= Verdicts.threshold(of: e, bar: minScore) {
            return .success((.hit(Match(entry: e, score: min(score, 1))), id))
        }
        // The scan filters on the scope's hash; a candidate of another scope with the same hash
        // (Hasher is seeded per process: not something a client can aim for) is dropped here.
        let found = index.search(vector, k: Self.candidates, tag: Self.tag(scope), now: now).filter { entries[$0.id].map { ExactText.same($0.scope, scope) } == true }
        guard let nearest = found.first, let nearestEntry = entries[nearest.id] else { return .success((.miss, nil)) }
        var eligible: [(id: UInt64, entry: Entry, score: Float, rank: Float)] = []
        for m in found {
            guard let e = entries[m.id], m.score >= Verdicts.threshold(of: e, bar: minScore) else { continue }
            let score = min(m.score, 1)  // float rounding: a cosine of 1.0000005
            eligible.append((m.id, e, score, score))
        }
        var query = AnalysedPrompt(prompt)
        let rescued = eligible.isEmpty
        if rescued, rewordings, let verifier {
            eligible = Self.rewordings(found.compactMap { m in entries[m.id].map { (m.id, $0, min(m.score, 1)) } },
                                       of: &query, minScore: minScore, verifier: verifier)
        }
        let below = Outcome.below(Match(entry: nearestEntry, score: nearest.score), minScore: Verdicts.threshold(of: nearestEntry, bar: minScore))
        guard !eligible.isEmpty else { return .success((below, nil)) }
        if eligible.count > 1 && !rescued {
            let query = SurfaceSimilarity(prompt)
            for i in eligible.indices {
                eligible[i].rank = query.rerankScore(cosine: eligible[i].score, SurfaceSimilarity(eligible[i].entry.prompt))
            }
            eligible.sort { $0.rank > $1.rank }
        }
        var refused: (Match, String)? = nil
        for candidate in eligible.prefix(Self.verified) {
            let match = Match(entry: candidate.entry, score: candidate.score)
            let reason: String?
            if candidate.entry.prompt == prompt {
                reason = nil  // the same text: nothing differs (and a 64 KiB prompt is not analysed twice)
            } else if let verifier {
                reason = verifier.refusal(&query, candidate.entry.prompt, underTheBar: rescued)
            } else {
                let verdict = TrapGuard.check(query.basicAnalysis(), TrapGuard.Analysis(candidate.entry.prompt))
                reason = verdict == .ok ? nil : verdict.rawValue
            }
            guard let reason else { return .success((.hit(match), candidate.id)) }
            if refused == nil { refused = (match, reason) }
            // A different number or name says "another item": the next candidate may be the
            // one asked about. Any other refusal may be a rewording misjudged, and the next
            // candidate is then a worse answer, not a better one.
            guard reason.hasPrefix("name") || reason.hasPrefix("numbers") else { break }
        }
        // Candidates under the bar that the verifier refused were never more than a chance: what
        // is reported (WHY, the trap counters) is what it was without them.
        if rescued { return .success((below, nil)) }
        let (match, reason) = refused!
        return .success((.trap(match, reason: reason), nil))
    }

    /// Candidates under the bar that reword the query with synonyms: at most ``rewordingMargin``
    /// below it, with at least ``rewordingAlignment`` of both prompts' content words matched to
    /// an equal or synonymous word (``PromptVerifier/alignment(_:_:)``), and never an entry a
    /// bad verdict was given on. Averaged token vectors score "a simple, safe way to store" /
    /// "an uncomplicated and secure method of keeping" under a prompt that repeats most words
    /// and swaps one; the verifier still judges what these propose.
    static func rewordings(_ found: [(id: UInt64, entry: Entry, score: Float)], of query: inout AnalysedPrompt,
                           minScore: Float, verifier: PromptVerifier) -> [(id: UInt64, entry: Entry, score: Float, rank: Float)] {
        var picked: [(id: UInt64, entry: Entry, score: Float, rank: Float)] = []
        // Each alignment tries WordNet relations for every pair of base forms, and text placed
        // in the margin is easy to write: nearest first, within a budget.
        var budget = alignmentBudget
        for m in found {
            guard let aligned = alignedRewording(&query, of: m.entry, score: m.score, minScore: minScore, verifier: verifier, budget: &budget)
            else { continue }
            picked.append((m.id, m.entry, m.score, aligned))
        }
        // The best aligned first (the cosine breaks ties); re-ranking by surface is skipped.
        return picked.sorted { ($0.rank, $0.score) > ($1.rank, $1.score) }
    }

    /// How well `query`, scoring `score` under the bar against `entry`, aligns with it — nil
    /// unless it is a rewording ``rewordings`` takes: at most ``rewordingMargin`` under the bar,
    /// no bad verdict on the entry, at least ``rewordingAlignment`` of the words aligned (within
    /// `budget`). LLM.GET's written-back copies are checked by the same test, without the search.
    static func alignedRewording(_ query: inout AnalysedPrompt, of entry: Entry, score: Float, minScore: Float, verifier: PromptVerifier,
                                 budget: inout Int) -> Float? {
        guard score >= minScore - rewordingMargin, (entry.verdicts?.bad ?? 0) == 0,
              let aligned = verifier.alignment(&query, entry.prompt, budget: &budget), aligned >= rewordingAlignment else { return nil }
        return aligned
    }

    /// How far under the bar a rewording may score.
    public static let rewordingMargin: Float = 0.1
    /// Pairs of base forms the alignments of one lookup may try, every word the judgement compares
    /// charged (GPTCache's sentence pairs: median 132, 90% under 272, the largest 621). It was
    /// 400 when only counted words were charged (median 88, the largest 288): raised with the
    /// charge, so that as many candidates are tried and any one such sentence pair alone fits.
    static let alignmentBudget = 640
    /// The share of content words a rewording must match (see ``rewordings``).
    public static let rewordingAlignment: Float = 0.6

    /// Records a verdict on the entry `id` answering at `score`; the entry's verdicts after it
    /// (nil when there is no such entry).
    mutating func judge(id: UInt64, createdAt: Int64, score: Float, good: Bool) -> Verdicts? {
        guard var e = entries[id], e.createdAt == createdAt else { return nil }
        var v = e.verdicts ?? Verdicts()
        v.record(score: score, good: good)
        e.verdicts = v
        entries[id] = e
        return v
    }

    /// Puts `previous` back as the verdicts of that version of the entry if it still has exactly
    /// `recorded` (a verdict that could not be shared is taken back; a later one stays).
    public mutating func restoreVerdicts(_ previous: Verdicts?, ifStill recorded: Verdicts, prompt: String, scope: String, createdAt: Int64) {
        guard let id = byPrompt[Self.key(prompt, scope)], var e = entries[id], e.createdAt == createdAt, e.verdicts == recorded else { return }
        e.verdicts = previous
        entries[id] = e
    }

    /// Joins `verdicts` into those of the entry for `prompt` in `scope` created at `createdAt`
    /// (a replay, or another instance's feedback): verdicts on an answer since replaced do not
    /// touch the new one. An entry they condemn is deleted. false: no such entry.
    public mutating func mergeVerdicts(_ verdicts: Verdicts, prompt: String, scope: String, createdAt: Int64) -> Bool {
        guard let id = byPrompt[Self.key(prompt, scope)], var e = entries[id], e.createdAt == createdAt else { return false }
        let merged = e.verdicts.map { $0.merged(with: verdicts) } ?? verdicts
        if merged.condemnsEntry {
            remove(id: id)
            return true
        }
        e.verdicts = merged
        entries[id] = e
        return true
    }

    /// Whether `prompt` is stored in `scope`.
    public func contains(_ prompt: String, scope: String) -> Bool {
        byPrompt[Self.key(prompt, scope)] != nil
    }

    /// Deletes `prompt` in `scope` if its entry was created at or before `createdAt` (a newer
    /// write of the same prompt stays); true if it was deleted.
    public mutating func delete(_ prompt: String, scope: String, createdAtMost createdAt: Int64) -> Bool {
        guard let id = byPrompt[Self.key(prompt, scope)], let e = entries[id], e.createdAt <= createdAt else { return false }
        remove(id: id)
        return true
    }

    /// Deletes `prompt` in `scope`; true if it was there.
    public mutating func delete(_ prompt: String, scope: String) -> Bool {
        guard let id = byPrompt[Self.key(prompt, scope)] else { return false }
        remove(id: id)
        return true
    }

    public mutating func sweep(now: Int64) {
        for (id, e) in entries where e.isExpired(at: now) {
            remove(id: id)
            counters.expired += 1
        }
        if order.count > 2 * entries.count + 1024 { order = Deque(order.filter { entries[$0] != nil }) }
    }

    mutating func remove(id: UInt64) {
        guard let e = entries.removeValue(forKey: id) else { return }
        bytes -= e.bytes(dimension: index?.dimension ?? 0)
        if Self.isLong(e.prompt) { longPrompts -= 1 }
        byPrompt[Self.key(e.prompt, e.scope)] = nil
        index?.remove(id: id)
    }
}
