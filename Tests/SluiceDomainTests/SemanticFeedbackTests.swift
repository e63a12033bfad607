import NIOCore
import Testing
@testable import SluiceDomain

/// SEM.FEEDBACK's per-entry thresholds (``Verdicts``) and the re-rank of near-duplicates, on the
/// in-memory cache (the wire, the file and the shared stream are tested in SluiceServerTests and
/// tests/e2e).
@Suite("Semantic feedback and re-ranking")
struct SemanticFeedbackTests {
    /// A unit vector at `cosine` from (1, 0, 0).
    func at(_ cosine: Float) -> [Float] { [cosine, (1 - cosine * cosine).squareRoot(), 0] }

    func cache(_ entries: [(String, [Float])]) -> SemanticCache {
        let c = SemanticCache(defaultMinScore: 0.7)
        for (prompt, v) in entries {
            _ = c.set("ns", prompt: prompt, response: ByteBuffer(string: "answer to " + prompt), vector: v, embedder: "client", scope: "", createdAt: 0, expiresAt: 0)
        }
        return c
    }

    func get(_ c: SemanticCache, _ prompt: String, _ v: [Float], minScore: Float? = nil) -> SemanticNamespace.Outcome? {
        try? c.get("ns", prompt: prompt, vector: v, embedder: "client", scope: "", minScore: minScore, now: 1).get()
    }

    @Test func aBadVerdictRefusesThatQueryAndEveryLessSimilarOne() throws {
        let c = cache([("stored", [1, 0, 0])])
        guard case .hit = get(c, "asked", at(0.8)) else { Issue.record("expected a hit at 0.8"); return }
        let f = try #require(try c.feedback("ns", prompt: "asked", vector: at(0.8), embedder: "client", scope: "", minScore: nil, good: false, now: 1).get())
        #expect(f.prompt == "stored" && abs(f.score - 0.8) < 1e-4 && f.verdicts.bad == 1 && !f.deleted)
        #expect(f.threshold > 0.8 && f.threshold <= 0.8 + Verdicts.margin + 1e-4)
        guard case .below(_, let bar) = get(c, "asked", at(0.8)) else { Issue.record("the judged query must not hit again"); return }
        #expect(bar > 0.8)
        guard case .below = get(c, "further", at(0.75)) else { Issue.record("a less similar query must not hit"); return }
        guard case .hit = get(c, "closer", at(0.9)) else { Issue.record("a closer query still hits"); return }
        // Even an explicit low MINSCORE does not go under a bad score.
        guard case .below = get(c, "asked", at(0.8), minScore: 0.5) else { Issue.record("MINSCORE 0.5 must not undo a bad verdict"); return }
        #expect(c.info("ns")?.feedbackBad == 1)
    }

    @Test func goodVerdictsRelaxWithinTheBoundAndNeverUnderABadScore() {
        var v = Verdicts()
        for _ in 0..<20 { v.record(score: 0.75, good: true) }
        #expect(v.good == 20 && abs(v.threshold(bar: 0.7) - (0.7 - Verdicts.maxRelax)) < 1e-5)
        v.record(score: 0.66, good: false)
        #expect(v.relax == 0 && abs(v.threshold(bar: 0.7) - 0.7) < 1e-5)  // a bad verdict takes the relaxing back
        for _ in 0..<20 { v.record(score: 0.9, good: true) }
        #expect(abs(v.threshold(bar: 0.7) - (0.66 + Verdicts.margin)) < 1e-5)  // not under the bad score
        v.record(score: 0.93, good: false)
        #expect(v.threshold(bar: 0.7) > 0.93)
        #expect(v.threshold(bar: 0.95) >= 0.95 - Verdicts.maxRelax)
    }

    @Test func goodVerdictsLetAnEntryAnswerSlightlyBelowTheBar() throws {
        let c = cache([("stored", [1, 0, 0])])
        guard case .below = get(c, "asked", at(0.68)) else { Issue.record("0.68 is below the default 0.7"); return }
        for _ in 0..<2 {
            _ = try c.feedback("ns", prompt: "stored", vector: [1, 0, 0], embedder: "client", scope: "", minScore: nil, good: true, now: 1).get()
        }
        guard case .hit = get(c, "asked", at(0.68)) else { Issue.record("two good verdicts lower the threshold by 0.04"); return }
        guard case .below = get(c, "further", at(0.65)) else { Issue.record("two good verdicts lower it by 0.04 only"); return }
        for _ in 0..<20 {
            _ = try c.feedback("ns", prompt: "stored", vector: [1, 0, 0], embedder: "client", scope: "", minScore: nil, good: true, now: 1).get()
        }
        guard case .hit = get(c, "further", at(0.61)) else { Issue.record("many good verdicts: 0.1 below the bar"); return }
        guard case .below = get(c, "far", at(0.59)) else { Issue.record("never more than 0.1 below the bar"); return }
    }

    @Test func aBadVerdictOnTheEntrysOwnPromptDeletesIt() throws {
        let c = cache([("stored", [1, 0, 0])])
        let f = try #require(try c.feedback("ns", prompt: "stored", vector: [1, 0, 0], embedder: "client", scope: "", minScore: nil, good: false, now: 1).get())
        #expect(f.deleted && f.score == 1)
        #expect(c.count("ns") == 0)
    }

    @Test func feedbackOnNothingChangesNothing() throws {
        let c = cache([("stored", [1, 0, 0])])
        #expect(try c.feedback("ns", prompt: "far", vector: [0, 1, 0], embedder: "client", scope: "", minScore: nil, good: false, now: 1).get() == nil)
        #expect(try c.feedback("none", prompt: "x", vector: [1, 0, 0], embedder: "client", scope: "", minScore: nil, good: true, now: 1).get() == nil)
        guard case .hit = get(c, "stored", [1, 0, 0]) else { Issue.record("untouched"); return }
    }

    @Test func replacingAnEntryForgetsItsVerdicts() throws {
        let c = cache([("stored", [1, 0, 0])])
        _ = try c.feedback("ns", prompt: "asked", vector: at(0.8), embedder: "client", scope: "", minScore: nil, good: false, now: 1).get()
        _ = c.set("ns", prompt: "stored", response: ByteBuffer(string: "a better answer"), vector: [1, 0, 0], embedder: "client", scope: "", createdAt: 1, expiresAt: 0)
        guard case .hit = get(c, "asked", at(0.8)) else { Issue.record("a new answer starts without verdicts"); return }
    }

    @Test func verdictsFromElsewhereJoinAndNeverTouchANewerAnswer() {
        var ns = SemanticNamespace(maxEntries: 10)
        _ = ns.set("stored", response: ByteBuffer(string: "a"), vector: [1, 0, 0], embedder: "client", scope: "", createdAt: 5, expiresAt: 0)
        var bad = Verdicts(), good = Verdicts()
        bad.record(score: 0.8, good: false)
        good.record(score: 0.9, good: true)
        // A verdict on an older version of the entry (created at 4) is ignored.
        let stale = ns.mergeVerdicts(bad, prompt: "stored", scope: "", createdAt: 4)
        #expect(!stale)
        #expect(ns.entries.values.first?.verdicts == nil)
        // Two instances' verdicts, in either order, end the same: the bad one is never lost.
        var other = ns
        let applied = [ns.mergeVerdicts(bad, prompt: "stored", scope: "", createdAt: 5), ns.mergeVerdicts(good, prompt: "stored", scope: "", createdAt: 5),
                       other.mergeVerdicts(good, prompt: "stored", scope: "", createdAt: 5), other.mergeVerdicts(bad, prompt: "stored", scope: "", createdAt: 5)]
        #expect(applied == [true, true, true, true])
        let mine = ns.entries.values.first?.verdicts, theirs = other.entries.values.first?.verdicts
        #expect(mine == theirs && mine?.bad == 1 && mine?.worstBad == 0.8 && mine?.relax == 0)
        // Applied twice (a replay): no change.
        let replayed = ns.mergeVerdicts(bad, prompt: "stored", scope: "", createdAt: 5)
        #expect(replayed && ns.entries.values.first?.verdicts == mine)
        // A condemning verdict from elsewhere deletes that version.
        var condemned = Verdicts()
        condemned.record(score: 1, good: false)
        let deleted = ns.mergeVerdicts(condemned, prompt: "stored", scope: "", createdAt: 5)
        #expect(deleted && ns.count == 0)
    }

    @Test func aVerdictIsTakenBackOnlyIfNothingCameAfterIt() {
        var ns = SemanticNamespace(maxEntries: 10)
        _ = ns.set("stored", response: ByteBuffer(string: "a"), vector: [1, 0, 0], embedder: "client", scope: "", createdAt: 5, expiresAt: 0)
        var one = Verdicts(), two = Verdicts()
        one.record(score: 0.8, good: false)
        two = one
        two.record(score: 0.9, good: false)
        _ = ns.mergeVerdicts(one, prompt: "stored", scope: "", createdAt: 5)
        ns.restoreVerdicts(nil, ifStill: two, prompt: "stored", scope: "", createdAt: 5)  // not what it has: kept
        #expect(ns.entries.values.first?.verdicts == one)
        ns.restoreVerdicts(nil, ifStill: one, prompt: "stored", scope: "", createdAt: 5)
        #expect(ns.entries.values.first?.verdicts == nil)
    }

    @Test func verdictsSurviveTheirTextForm() {
        let v = Verdicts(relax: 0.04, worstBad: 0.81, good: 3, bad: 1)
        #expect(Verdicts(encoded: v.encoded) == v)
        #expect(Verdicts(encoded: "1 2 3") == nil && Verdicts(encoded: "x 0 0 0") == nil)
        // Out-of-range numbers from a file or a stream are clamped, not trusted.
        let clamped = Verdicts(encoded: "5 9 -1 -7")
        #expect(clamped?.relax == Verdicts.maxRelax && clamped?.worstBad == 1 && clamped?.good == 0 && clamped?.bad == 0)
    }

    @Test func nearDuplicatesAreRerankedByHowTheyLook() throws {
        // Same vector, different spelling: the cosine ties, the surface decides.
        let c = cache([("The base class is `GeneratorBasedBuilder`.", [1, 0, 0]), ("The base class is GeneratorBasedBuilder.", [1, 0, 0])])
        guard case .hit(let m) = get(c, "The base class is GeneratorBasedBuilder!", [1, 0, 0]) else { Issue.record("expected a hit"); return }
        #expect(m.entry.prompt == "The base class is GeneratorBasedBuilder.")
        let a = SurfaceSimilarity("How do I reset my password?")
        #expect(a.rerankScore(cosine: 0, a) > 0.349 && a.rerankScore(cosine: 0, SurfaceSimilarity("")) == 0)
    }

    /// A cache with the WordNet verifier, looking under the bar for rewordings of "client"
    /// vectors (``SemanticNamespace/rewordings``; the server names its built-in embedder).
    func verifiedCache(_ entries: [(String, [Float])], rewordingEmbedder: String? = "client") throws -> SemanticCache {
        let c = SemanticCache(defaultMinScore: 0.7, verifier: try #require(PromptVerifier.builtIn), rewordingEmbedder: rewordingEmbedder)
        for (prompt, v) in entries {
            _ = c.set("ns", prompt: prompt, response: ByteBuffer(string: "answer to " + prompt), vector: v, embedder: "client", scope: "", createdAt: 0, expiresAt: 0)
        }
        return c
    }

    static let stored = "Safe ways to store and distribute vaccines"
    static let reworded = "Secure methods of keeping and disseminating vaccines"

    @Test func aRewordingInSynonymsAnswersAlittleUnderTheBar() throws {
        let c = try verifiedCache([(Self.stored, [1, 0, 0])])
        guard case .hit(let m) = get(c, Self.reworded, at(0.65)) else { Issue.record("a rewording in synonyms at 0.65 answers"); return }
        #expect(m.entry.prompt == Self.stored && abs(m.score - 0.65) < 1e-4)
        // Not further under the bar than the margin.
        guard case .below = get(c, Self.reworded, at(0.7 - SemanticNamespace.rewordingMargin - 0.01)) else { Issue.record("0.59 is too far"); return }
        // A MINSCORE the request sets is a floor: nothing under it.
        guard case .below = get(c, Self.reworded, at(0.65), minScore: 0.7) else { Issue.record("MINSCORE 0.7 is a floor"); return }
        // The verifier still judges it, and a refusal under the bar is reported as under it.
        guard case .below = get(c, "Unsafe ways to store and distribute vaccines", at(0.65)) else { Issue.record("an antonym is refused"); return }
        #expect(c.info("ns")?.traps == 0)
        // Under the bar every word-by-word rule applies, however long the prompts: negation ...
        let d = try verifiedCache([("Safe ways to store and distribute vaccines in rural clinics", [1, 0, 0])])
        guard case .hit = get(d, "Secure methods of keeping and disseminating vaccines in rural clinics", at(0.65)) else { Issue.record("aligned"); return }
        guard case .below = get(d, "Secure methods of keeping and disseminating vaccines not in rural clinics", at(0.65)) else { Issue.record("negation"); return }
        // ... and an opposite said with a synonym of the antonym (increase / decrease ~ diminish).
        let e = try verifiedCache([("How do I quickly increase the speed of my home network", [1, 0, 0])])
        guard case .below = get(e, "How do I rapidly diminish the speed of my home network", at(0.65)) else { Issue.record("antonym of a synonym"); return }
        // A bad verdict on it: no longer answered under the bar, for any rewording.
        _ = try c.feedback("ns", prompt: Self.reworded, vector: at(0.65), embedder: "client", scope: "", minScore: nil, good: false, now: 1).get()
        guard case .below = get(c, Self.reworded, at(0.65)) else { Issue.record("a bad verdict ends it"); return }
        guard case .below = get(c, "Secure methods of keeping vaccines", at(0.68)) else { Issue.record("for every rewording"); return }
        guard case .hit = get(c, Self.reworded, at(0.75)) else { Issue.record("above the bar as before"); return }
    }

    @Test func wordsThatDoNotAlignStayUnderTheBar() throws {
        // Half the words the same, the other half another thing to bake: 0.5 of them align.
        let c = try verifiedCache([("How do I bake chocolate cookies at home?", [1, 0, 0])])
        guard case .below = get(c, "How do I bake sourdough bread at home?", at(0.65)) else { Issue.record("another subject"); return }
        guard case .hit = get(c, "How can I bake chocolate biscuits at home?", at(0.65)) else { Issue.record("cookies / biscuits align"); return }
    }

    @Test func onlyTheEmbedderTheMarginWasMeasuredOnLooksUnderTheBar() throws {
        let other = try verifiedCache([(Self.stored, [1, 0, 0])], rewordingEmbedder: "minilm-tok128-v1")
        guard case .below = get(other, Self.reworded, at(0.65)) else { Issue.record("client vectors: MINSCORE is the bar"); return }
        let plain = cache([(Self.stored, [1, 0, 0])])  // no verifier (--sem-verifier basic)
        guard case .below = get(plain, Self.reworded, at(0.65)) else { Issue.record("no verifier, no rewordings"); return }
        #expect(!plain.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.65, query: Self.reworded, now: 1))
    }

    @Test func copiesOfRewordingsStayValidWhileALookupWouldStillFindThem() throws {
        let c = try verifiedCache([(Self.stored, [1, 0, 0])])
        #expect(c.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.65, query: Self.reworded, now: 1))
        #expect(!c.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.55, query: Self.reworded, now: 1))
        // A copy an explicit MINSCORE made for a prompt that is no rewording: not kept at the default bar.
        #expect(!c.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.65, query: "How do I bake bread at home?", now: 1))
        #expect(!c.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.65, query: nil, now: 1))
        _ = try c.feedback("ns", prompt: Self.reworded, vector: at(0.66), embedder: "client", scope: "", minScore: nil, good: false, now: 1).get()
        #expect(!c.stillAnswers("ns", scope: "", prompt: Self.stored, createdAt: 0, answer: ByteBuffer(string: "answer to " + Self.stored), score: 0.65, query: Self.reworded, now: 1))
    }

    /// Namespaces and scopes are identities kept as their bytes, as the exact layers keep them:
    /// canonically equivalent spellings (composed / decomposed é, U+212B / U+00C5) are two
    /// namespaces and two scopes, and a scope with a NUL in it cannot collide with another
    /// scope's prompt (found by an attack: each shared answers, or deleted the other's entry).
    @Test func namesAndScopesAreTheirBytes() throws {
        let c = SemanticCache(defaultMinScore: 0.7)
        func set(_ ns: String, _ scope: String, _ prompt: String, _ answer: String) {
            _ = c.set(ns, prompt: prompt, response: ByteBuffer(string: answer), vector: [1, 0, 0], embedder: "client", scope: scope, createdAt: 0, expiresAt: 0)
        }
        func answer(_ ns: String, _ scope: String, _ prompt: String) -> String? {
            guard case .hit(let hit)? = try? c.get(ns, prompt: prompt, vector: [1, 0, 0], embedder: "client", scope: scope, minScore: nil, now: 1).get() else { return nil }
            return String(buffer: hit.entry.response)
        }
        let composed = "caf\u{e9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // what String says; the names must not
        set(composed, "", "q", "composed namespace")
        #expect(answer(composed, "", "q") == "composed namespace")
        #expect(answer(decomposed, "", "q") == nil)
        set("ns", "\u{212b}", "q", "angstrom scope")
        #expect(answer("ns", "\u{212b}", "q") == "angstrom scope" && answer("ns", "\u{c5}", "q") == nil)
        set(decomposed, "", "q", "decomposed namespace")
        #expect(answer(composed, "", "q") == "composed namespace" && answer(decomposed, "", "q") == "decomposed namespace")
        #expect(c.names.count == 3)  // (a Set of Strings would count two)
        // A NUL in a scope: two entries, each in its own scope.
        set("nul", "team\u{0}x", "How do I reset my password?", "first")
        set("nul", "team", "x\u{0}How do I reset my password?", "second")
        #expect(c.info("nul")?.entries == 2)
        #expect(answer("nul", "team\u{0}x", "How do I reset my password?") == "first")
        #expect(answer("nul", "team", "x\u{0}How do I reset my password?") == "second")
        #expect(c.drop(decomposed) == 1 && answer(composed, "", "q") == "composed namespace")
        // The index's scope tag is of the bytes too: ten near entries in the decomposed scope do
        // not crowd the composed scope's entry out of the candidates for a reworded query.
        set("crowd", composed, "stored", "composed scope")
        for i in 0..<10 { set("crowd", decomposed, "near \(i)", "decomposed \(i)") }
        let reworded = try? c.get("crowd", prompt: "asked", vector: at(0.95), embedder: "client", scope: composed, minScore: nil, now: 1).get()
        guard case .hit(let hit)? = reworded else { Issue.record("crowded out: \(String(describing: reworded))"); return }
        #expect(String(buffer: hit.entry.response) == "composed scope")
        // An entry is found again by its prompt's bytes, as the file keys its row: a delete in
        // another spelling deletes nothing (it once emptied memory and left the row to come back).
        var ns = SemanticNamespace(maxEntries: 10)
        _ = ns.set("caf\u{e9} ?", response: ByteBuffer(string: "a"), vector: [1, 0, 0], embedder: "client", scope: "", createdAt: 0, expiresAt: 0)
        #expect(!ns.delete("cafe\u{301} ?", scope: "") && ns.count == 1)
        #expect(ns.delete("caf\u{e9} ?", scope: "") && ns.count == 0)
        // Bytes moved from the scope to the prompt are another key, and hash apart.
        let a = SemanticNamespace.key("c", "ab"), b = SemanticNamespace.key("bc", "a")
        #expect(a != b && a.hashValue != b.hashValue)
    }
}
