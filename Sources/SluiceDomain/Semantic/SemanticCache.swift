#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import Synchronization

/// All semantic namespaces. Each sits behind its own read-write lock: searches of one namespace
/// run side by side; a write waits only for the searches in progress in that namespace.
public final class SemanticCache: Sendable {
    final class Slot: @unchecked Sendable {
        // @unchecked: `namespace` is only touched under `lock`.
        let lock = ReadWriteLock()
        var namespace: SemanticNamespace
        let hits = Atomic<Int>(0), misses = Atomic<Int>(0), traps = Atomic<Int>(0)
        let judgedGood = Atomic<Int>(0), judgedBad = Atomic<Int>(0)
        /// Hits on entries stored with TOKENS, COST or TAG, by tag id.
        let saved = Locked<[UInt16: Savings]>([:])
        /// Entries × dimension, kept by every write: ``scanCost`` reads it without the lock
        /// (it is asked on the event loop for every SEM command).
        let scanCost = Atomic<Int>(0)
        /// The namespace's `holdsLongPrompts`, readable without the lock.
        let holdsLongPrompts = Atomic<Bool>(false)
        /// Which making of the namespace this is (a dropped and re-made one is another).
        let generation: UInt64
        init(_ ns: SemanticNamespace, generation: UInt64) {
            namespace = ns
            self.generation = generation
        }
    }

    /// By name as bytes (``ExactText``): canonically equivalent names are two namespaces.
    let slots = Locked<[ExactText: Slot]>([:])
    public let defaultMinScore: Float
    public let defaultMaxEntries: Int
    public let maxNamespaces: Int
    /// Entries in all namespaces together.
    public let maxTotalEntries: Int
    /// Memory of all entries together (prompts, responses, vectors, overhead).
    public let maxTotalBytes: Int
    let total = Atomic<Int>(0)
    let generations = Atomic<UInt64>(0)
    /// The counters of dropped namespaces, so totals never go back.
    let retired = Locked(Retired())
    struct Retired: Sendable {
        var hits = 0, misses = 0, traps = 0, evictions = 0, expired = 0, feedbackGood = 0, feedbackBad = 0
        var saved: [UInt16: Savings] = [:]
    }
    let totalBytesCounter = Atomic<Int>(0)
    /// Refusals by the verifier's rule (the first word of its reason: substitution, sibling,
    /// numbers...). The rules are a fixed, small set; past ``maxTrapRules`` names they count
    /// as "other".
    let trapRules = Locked<[String: Int]>([:])
    static let maxTrapRules = 32

    /// The second stage of every lookup; nil: ``TrapGuard``'s checks only.
    public let verifier: PromptVerifier?
    /// The embedder whose vectors ``SemanticNamespace/rewordings`` may look under the bar for
    /// (the built-in one, on which its margin was measured): nil, never.
    public let rewordingEmbedder: String?
    /// Entries from which a namespace's index is partitioned (``VectorIndex/listsFrom``; tests lower it).
    let partitionFrom: Int
    /// Where a partition is built: a thread of the server's (the default, in tests, runs it in
    /// the caller).
    let background: Background
    public typealias Background = @Sendable (@escaping @Sendable () -> Void) -> Void

    public init(defaultMinScore: Float = 0.7, defaultMaxEntries: Int = 100_000, maxNamespaces: Int = 10_000,
                maxTotalEntries: Int = 1_000_000, maxTotalBytes: Int = 1 << 30, verifier: PromptVerifier? = nil,
                rewordingEmbedder: String? = nil, partitionFrom: Int = VectorIndex.listsFrom, background: @escaping Background = { $0() }) {
        self.background = background
        self.verifier = verifier
        self.rewordingEmbedder = verifier == nil ? nil : rewordingEmbedder
        self.partitionFrom = max(partitionFrom, 1)
        self.defaultMinScore = defaultMinScore
        self.defaultMaxEntries = defaultMaxEntries
        self.maxNamespaces = maxNamespaces
        self.maxTotalEntries = maxTotalEntries
        self.maxTotalBytes = maxTotalBytes
    }

    /// Entries in all namespaces.
    public var totalEntries: Int { total.load(ordering: .relaxed) }
    /// Bytes of all entries.
    public var totalBytes: Int { totalBytesCounter.load(ordering: .relaxed) }

    /// Stores an entry (see ``SemanticNamespace/set``), within the bounds on namespaces and on
    /// entries overall. Returns the entries evicted to make room. `landing`: run under the
    /// namespace's write lock once the entry is stored (a writer's bookkeeping that a concurrent
    /// ``replay`` must see with the entry, never without it).
    public func set(_ name: String, prompt: String, response: ByteBuffer, vector: [Float], embedder: String, scope: String,
                    createdAt: Int64, expiresAt: Int64, worth: AnswerWorth = .none,
                    landing: (() -> Void)? = nil) -> Result<[SemanticNamespace.Eviction], SemanticFailure> {
        var due = false
        let result = write(name) {
            let r = store(in: &$0, prompt: prompt, response: response, vector: vector, embedder: embedder, scope: scope,
                          createdAt: createdAt, expiresAt: expiresAt, worth: worth)
            if case .success = r { landing?() }
            due = $0.index?.wantsLists == true
            return r
        } ?? .failure(.tooManyNamespaces(limit: maxNamespaces))
        if due { partitionIfDue(name) }
        return result
    }

    /// ``SemanticNamespace/set`` within the cache's bounds on entries and bytes overall, for a
    /// namespace the caller holds under ``write`` (or ``replay``).
    public func store(in namespace: inout SemanticNamespace, prompt: String, response: ByteBuffer, vector: [Float], embedder: String,
                      scope: String, createdAt: Int64, expiresAt: Int64, worth: AnswerWorth) -> Result<[SemanticNamespace.Eviction], SemanticFailure> {
        // Checked without the cache's lock: concurrent writers may overshoot by one entry each.
        // Full by bytes works as full by count: a new entry only takes the place of an old one.
        let full = totalEntries >= maxTotalEntries ? maxTotalEntries : nil
        let needed = prompt.utf8.count + response.readableBytes + scope.utf8.count + vector.count * 4 + 160
        let (sum, overflow) = totalBytes.addingReportingOverflow(needed)
        let (excess, under) = sum.subtractingReportingOverflow(maxTotalBytes)
        let bytesToFree = overflow ? Int.max : under ? 0 : max(excess, 0)
        return namespace.set(prompt, response: response, vector: vector, embedder: embedder, scope: scope, createdAt: createdAt,
                             expiresAt: expiresAt, worth: worth, cacheFull: full, bytesToFree: bytesToFree)
    }

    /// Runs `steps` in turn under one write lock of the namespace (creating it when `create`):
    /// several changes that no reader may see half done. Stores go through ``store(in:...)``;
    /// the cache's totals are brought up to date after each step, so that the next one is
    /// bounded by what the previous one did. false: no such namespace (and not created), or no
    /// room for another one.
    @discardableResult
    public func replay(_ name: String, create: Bool, _ steps: [(inout SemanticNamespace) -> Void]) -> Bool {
        guard let s = slot(name, create: create) else { return false }
        s.lock.lockWrite()
        for step in steps { changing(s) { step(&$0) } }
        let due = s.namespace.index?.wantsLists == true
        s.lock.unlock()
        if due { partitionIfDue(name) }
        return true
    }

    /// Gives a namespace that has grown to ``VectorIndex/listsFrom`` rows its inverted lists
    /// (see `VectorIndex+Lists.swift`), on ``background``: a sample is copied under the write
    /// lock (at most 64 MiB), k-means runs with no lock (about a second at 512 lists × 20,480
    /// rows of 384 dimensions), the rows are assigned 2,048 at a time under the read lock
    /// (searches go on; a write waits for one range, milliseconds), what changed meanwhile is
    /// brought up to date under the read lock too, and the lists are installed under the write
    /// lock with the last few changes. Once per namespace.
    func partitionIfDue(_ name: String) {
        guard let s = slot(name, create: false) else { return }
        s.lock.lockWrite()
        let begun = s.namespace.index?.wantsLists == true ? s.namespace.index?.beginPartition(seed: s.generation) : nil
        s.lock.unlock()
        guard let begun else { return }
        background {
            var builder = begun
            builder.train()
            var start = 0
            while true {
                s.lock.lockRead()
                let rows = s.namespace.index?.count ?? 0
                if start < rows { s.namespace.index?.assign(start ..< min(start + Self.assignedAtOnce, rows), into: &builder) }
                s.lock.unlock()
                guard start < rows else { break }
                start += Self.assignedAtOnce
            }
            // What changed meanwhile, under the read lock while there is much of it (a bounded
            // number of rounds: a namespace written faster than this catches up gets the rest
            // under the write lock).
            for _ in 0..<8 {
                s.lock.lockWrite()
                let changed = s.namespace.index?.takeChanges() ?? []
                s.lock.unlock()
                guard !changed.isEmpty else { break }
                s.lock.lockRead()
                s.namespace.index?.catchUp(changed, into: &builder)
                s.lock.unlock()
                if changed.count < Self.assignedAtOnce / 8 { break }
            }
            s.lock.lockWrite()
            s.namespace.finishPartition(builder)
            s.lock.unlock()
        }
    }

    /// Rows assigned to their lists under one read lock.
    static let assignedAtOnce = 2_048

    func slot(_ name: String, create: Bool) -> Slot? {
        let key = ExactText(name)
        return slots.withLock { all in
            if let s = all[key] { return s }
            guard create, all.count < maxNamespaces else { return nil }
            var ns = SemanticNamespace(maxEntries: defaultMaxEntries)
            ns.partitionFrom = partitionFrom
            let s = Slot(ns, generation: generations.add(1, ordering: .relaxed).newValue)
            all[key] = s
            return s
        }
    }

    /// Runs `body` with the namespace locked for writing, creating it unless `create` is false.
    /// nil: no such namespace (and not created), or no room for another one.
    public func write<R>(_ name: String, create: Bool = true, _ body: (inout SemanticNamespace) -> R) -> R? {
        guard let s = slot(name, create: create) else { return nil }
        s.lock.lockWrite()
        defer { s.lock.unlock() }
        return changing(s, body)
    }

    /// Runs `body` on a namespace its caller holds locked for writing, and keeps the numbers
    /// read without the lock (its scan cost, its long prompts, the cache's totals) up to date.
    private func changing<R>(_ s: Slot, _ body: (inout SemanticNamespace) -> R) -> R {
        let before = s.namespace.count, bytesBefore = s.namespace.bytes
        let result = body(&s.namespace)
        s.scanCost.store(s.namespace.count &* (s.namespace.dimension ?? 0), ordering: .relaxed)
        s.holdsLongPrompts.store(s.namespace.holdsLongPrompts, ordering: .relaxed)
        total.add(s.namespace.count - before, ordering: .relaxed)
        totalBytesCounter.add(s.namespace.bytes - bytesBefore, ordering: .relaxed)
        return result
    }

    /// Runs `body` with the namespace locked for reading; nil if there is no such namespace.
    /// (Counters are updated through `write`; searches only read.)
    public func read<R>(_ name: String, _ body: (SemanticNamespace) -> R) -> R? {
        guard let s = slot(name, create: false) else { return nil }
        s.lock.lockRead()
        defer { s.lock.unlock() }
        return body(s.namespace)
    }

    /// A search under the read lock; counts the outcome. Unknown namespace: a miss.
    public func get(_ name: String, prompt: String, vector: [Float], embedder: String, scope: String, minScore: Float?,
                    now: Int64) -> Result<SemanticNamespace.Outcome, SemanticFailure> {
        guard let s = slot(name, create: false) else { return .success(.miss) }
        s.lock.lockRead()
        let threshold = minScore ?? s.namespace.minScore ?? defaultMinScore
        let result = s.namespace.get(prompt, vector: vector, embedder: embedder, scope: scope, minScore: threshold, now: now, verifier: verifier,
                                     rewordings: looksUnderTheBar(minScore: minScore, embedder: embedder))
        s.lock.unlock()
        switch result {
        case .success(.hit(let match)):
            s.hits.add(1, ordering: .relaxed)
            let worth = match.entry.worth
            if worth.countsSavings { s.saved.withLock { $0[worth.tag, default: Savings()].add(tokens: worth.tokens, cost: worth.cost) } }
        case .success(.miss), .success(.below): s.misses.add(1, ordering: .relaxed)
        case .success(.trap(_, let reason)):
            s.traps.add(1, ordering: .relaxed)
            s.misses.add(1, ordering: .relaxed)
            let rule = String(reason.prefix { $0 != " " && $0 != ":" })
            trapRules.withLock { rules in
                let name = rules[rule] != nil || rules.count < Self.maxTrapRules ? rule : "other"
                rules[name, default: 0] += 1
            }
        case .failure: break
        }
        return result
    }

    /// Whether a lookup at the namespace's own bar looks under it for rewordings
    /// (``SemanticNamespace/rewordings``): not when the request set MINSCORE (a floor it chose),
    /// nor for vectors of another embedder than the one the margin was measured on.
    func looksUnderTheBar(minScore: Float?, embedder: String) -> Bool {
        minScore == nil && rewordingEmbedder == embedder
    }

    /// Whether the entry stored for `prompt` in `scope` — the version created at `createdAt` —
    /// is live and would still answer `query`, which scored `score` against it: its threshold
    /// (the namespace's bar, raised by bad verdicts) at or under the score, or, under the bar, a
    /// lookup at that bar would find `query` a rewording of it (``SemanticNamespace/rewordings``).
    /// LLM.GET asks this of the exact copies it wrote back after semantic hits, under the bar
    /// the reader asks for (`minScore`, else the namespace's), as its lookup would: a copy made
    /// for a laxer reader is not retired and made again on each of its reads.
    ///
    /// The copy's `answer` must still be the entry's: a version is its creation time in
    /// milliseconds, and an answer replaced within the same millisecond (a pipeline, or a
    /// client a few hundred microseconds away) keeps it. The comparison costs what writing the
    /// answer into the reply does.
    public func stillAnswers(_ name: String, scope: String, prompt: String, createdAt: Int64, answer: ByteBuffer, score: Float,
                             minScore: Float? = nil, query: String?, now: Int64) -> Bool {
        read(name) { ns -> Bool in
            guard let id = ns.byPrompt[SemanticNamespace.key(prompt, scope)], let e = ns.entries[id], e.createdAt == createdAt,
                  !e.isExpired(at: now), e.response == answer else { return false }
            let bar = minScore ?? ns.minScore ?? defaultMinScore
            if score >= Verdicts.threshold(of: e, bar: bar) { return true }
            guard let query, let verifier, let embedder = ns.embedder, looksUnderTheBar(minScore: minScore, embedder: embedder) else { return false }
            // Within the budget a lookup has (on the caller's event loop: unbounded, two long
            // prompts took milliseconds), as the lookup that found the rewording had.
            var analysed = AnalysedPrompt(query), budget = SemanticNamespace.alignmentBudget
            return SemanticNamespace.alignedRewording(&analysed, of: e, score: score, minScore: bar, verifier: verifier, budget: &budget) != nil
        } ?? false
    }

    /// A verdict recorded by ``feedback``: on which entry, at what score, and what it learned.
    public struct Feedback: Sendable, Hashable {
        public var scope: String
        /// The entry's prompt (the verdict is on its answer).
        public var prompt: String
        /// Which version of the entry (a later SEM.SET of the prompt is another).
        public var createdAt: Int64
        public var score: Float
        /// The entry's verdicts before this one (to put back if it cannot be shared).
        public var previous: Verdicts?
        public var verdicts: Verdicts
        /// The threshold the entry answers at now, under the bar the verdict was given with.
        public var threshold: Float
        /// A bad verdict on the entry's own prompt: its answer is wrong, the entry is gone.
        public var deleted: Bool
    }

    /// Records a verdict on the entry that answers `prompt` (a query that was answered, with
    /// the arguments it was asked with): the one the lookup picks. nil: nothing answers it.
    /// `landing`: run under the namespace's write lock with the verdict recorded (see `set`).
    public func feedback(_ name: String, prompt: String, vector: [Float], embedder: String, scope: String, minScore: Float?,
                         good: Bool, now: Int64, landing: ((Feedback) -> Void)? = nil) -> Result<Feedback?, SemanticFailure> {
        guard let s = slot(name, create: false) else { return .success(nil) }
        // The search under the read lock, as a SEM.GET's: other searches go on meanwhile.
        s.lock.lockRead()
        let bar = minScore ?? s.namespace.minScore ?? defaultMinScore
        // The entry SEM.GET with the same arguments answers from (not a shortcut to the entry
        // stored for this very text: with client vectors that may be another one).
        let found = s.namespace.lookup(prompt, vector: vector, embedder: embedder, scope: scope, minScore: bar, now: now, verifier: verifier,
                                       rewordings: looksUnderTheBar(minScore: minScore, embedder: embedder))
            .map { result -> (UInt64, SemanticNamespace.Entry, Float)? in
                guard case .hit(let match) = result.outcome, let id = result.id else { return nil }
                return (id, match.entry, match.score)
            }
        s.lock.unlock()
        guard case .success(let candidate?) = found else { return found.map { _ in nil } }
        let (id, entry, score) = candidate
        // Then the verdict, under the write lock, on that very entry (not one that replaced it).
        let recorded = write(name, create: false) { ns -> Feedback? in
            let previous = ns.entries[id]?.verdicts
            guard let verdicts = ns.judge(id: id, createdAt: entry.createdAt, score: score, good: good) else { return nil }
            if verdicts.condemnsEntry { ns.remove(id: id) }
            let feedback = Feedback(scope: entry.scope, prompt: entry.prompt, createdAt: entry.createdAt, score: score, previous: previous,
                                    verdicts: verdicts, threshold: verdicts.threshold(bar: bar), deleted: verdicts.condemnsEntry)
            landing?(feedback)
            return feedback
        } ?? nil
        if recorded != nil {
            if good { s.judgedGood.add(1, ordering: .relaxed) } else { s.judgedBad.add(1, ordering: .relaxed) }
        }
        return .success(recorded)
    }

    public struct Info: Sendable, Hashable {
        public var entries: Int
        public var dimension: Int?
        public var embedder: String?
        public var minScore: Float
        public var maxEntries: Int
        public var hits: Int, misses: Int, traps: Int, evictions: Int, expired: Int
        /// Verdicts recorded by SEM.FEEDBACK on this instance.
        public var feedbackGood = 0, feedbackBad = 0
        /// Which making of the namespace (it changes when the namespace is dropped and made again).
        public var generation: UInt64 = 0
        /// Inverted lists of the index (0: searched by an exact scan).
        public var lists = 0
    }

    public func info(_ name: String) -> Info? {
        guard let s = slot(name, create: false) else { return nil }
        s.lock.lockRead()
        defer { s.lock.unlock() }
        let ns = s.namespace
        return Info(entries: ns.count, dimension: ns.dimension, embedder: ns.embedder, minScore: ns.minScore ?? defaultMinScore,
                    maxEntries: ns.maxEntries, hits: s.hits.load(ordering: .relaxed), misses: s.misses.load(ordering: .relaxed),
                    traps: s.traps.load(ordering: .relaxed), evictions: ns.counters.evictions, expired: ns.counters.expired,
                    feedbackGood: s.judgedGood.load(ordering: .relaxed), feedbackBad: s.judgedBad.load(ordering: .relaxed),
                    generation: s.generation, lists: ns.listCount)
    }

    /// Removes a whole namespace; how many entries it had.
    public func drop(_ name: String) -> Int {
        guard let s = slots.withLock({ $0.removeValue(forKey: ExactText(name)) }) else { return 0 }
        s.lock.lockWrite()
        defer { s.lock.unlock() }
        let n = s.namespace.count
        let saved = s.saved.withLock { $0 }
        retired.withLock { r in
            r.hits += s.hits.load(ordering: .relaxed)
            r.misses += s.misses.load(ordering: .relaxed)
            r.traps += s.traps.load(ordering: .relaxed)
            r.evictions += s.namespace.counters.evictions
            r.expired += s.namespace.counters.expired
            r.feedbackGood += s.judgedGood.load(ordering: .relaxed)
            r.feedbackBad += s.judgedBad.load(ordering: .relaxed)
            r.saved.merge(saved) { $0 + $1 }
        }
        totalBytesCounter.subtract(s.namespace.bytes, ordering: .relaxed)
        var detached = SemanticNamespace(maxEntries: s.namespace.maxEntries)  // any write racing in lands in a detached namespace
        detached.partitionFrom = partitionFrom
        s.namespace = detached
        s.scanCost.store(0, ordering: .relaxed)
        total.subtract(n, ordering: .relaxed)
        return n
    }

    public var names: [String] { slots.withLock { $0.keys.map(\.text) } }

    /// The numbers of every namespace, for metrics: totals, each namespace's counters, and
    /// the verifier's refusals by rule.
    public struct Statistics: Sendable {
        public var entries = 0
        public var bytes = 0
        public var namespaces: [(name: String, info: Info)] = []
        public var trapsByRule: [String: Int] = [:]
        /// Totals over every namespace there is and ever was (they never go back).
        public var hits = 0, misses = 0, evictions = 0, feedbackGood = 0, feedbackBad = 0
        /// What hits on entries stored with TOKENS, COST or TAG saved, by tag id (dropped
        /// namespaces included).
        public var savedByTag: [UInt16: Savings] = [:]
    }

    public func statistics() -> Statistics {
        var result = Statistics(entries: totalEntries, bytes: totalBytes)
        let past = retired.withLock { $0 }
        (result.hits, result.misses, result.evictions) = (past.hits, past.misses, past.evictions)
        (result.feedbackGood, result.feedbackBad) = (past.feedbackGood, past.feedbackBad)
        result.savedByTag = past.saved
        for name in names.sorted() {
            guard let info = info(name) else { continue }
            result.namespaces.append((name, info))
            result.hits += info.hits
            result.misses += info.misses
            result.evictions += info.evictions
            result.feedbackGood += info.feedbackGood
            result.feedbackBad += info.feedbackBad
        }
        for s in slots.withLock({ Array($0.values) }) {
            result.savedByTag.merge(s.saved.withLock { $0 }) { $0 + $1 }
        }
        result.trapsByRule = trapRules.withLock { $0 }
        return result
    }

    /// Entries in a namespace (0 if there is none), without waiting for its lock's writers.
    public func count(_ name: String) -> Int {
        read(name) { $0.count } ?? 0
    }

    /// What a scan of the namespace costs (entries × dimensions; 0 if there is none), and
    /// whether the namespace ever took a prompt over
    /// ``SemanticNamespace/longPromptBytes`` (a lookup there may read such prompts as
    /// candidates: the verifier, milliseconds each, whatever the query's own length) — in one
    /// look-up of the namespace.
    public func offloadHints(_ name: String) -> (scanCost: Int, holdsLongPrompts: Bool) {
        guard let s = slot(name, create: false) else { return (0, false) }
        return (s.scanCost.load(ordering: .relaxed), s.holdsLongPrompts.load(ordering: .relaxed))
    }

    /// Drops expired entries, and recounts the total (a write racing a drop may have counted an
    /// entry of a namespace that is gone).
    public func sweep(now: Int64) {
        var counted = 0, bytes = 0
        for name in names {
            counted += write(name, create: false) { ns in
                ns.sweep(now: now)
                bytes += ns.bytes
                return ns.count
            } ?? 0
        }
        total.store(counted, ordering: .relaxed)
        totalBytesCounter.store(bytes, ordering: .relaxed)
    }
}
