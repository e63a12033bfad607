import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// `OwnSemanticChanges`, the shared semantic store's record of this instance's sets and deletes
/// until the stream tail passes them, and the tail's step (`RedisSemanticStore.follow`) on a real
/// `SemanticCache`: an older change of an entry is applied with all it does, and this instance's
/// latest change of the entry after it, in one write. (With real redis-servers and several
/// instances: `tests/e2e/test_shared_mode.py`.)
@Suite("An instance's own semantic changes, until the stream passes them")
struct OwnSemanticChangesTests {
    static func set(_ prompt: String, _ answer: String, ns: String = "faq", vector: [Float] = [1, 0, 0], embedder: String = "e") -> SemanticChange {
        .set(namespace: ns, scope: "", prompt: prompt, response: ByteBuffer(string: answer), embedder: embedder, vector: vector,
             createdAt: 1, expiresAt: 0)
    }
    static func delete(_ prompt: String, ns: String = "faq") -> SemanticChange {
        .delete(namespace: ns, scope: "", prompt: prompt)
    }
    static func verdicts(_ prompt: String, ns: String = "faq") -> SemanticChange {
        .verdicts(namespace: ns, scope: "", prompt: prompt, createdAt: 1, Verdicts())
    }
    static func id(_ text: String) -> OwnSemanticChanges.StreamID { OwnSemanticChanges.StreamID(text)! }

    /// The answer a change gives the entry (nil: a delete; a set's response).
    static func answer(_ change: SemanticChange?) -> String? {
        guard case .set(_, _, _, let response, _, _, _, _, _)? = change else { return nil }
        return String(buffer: response)
    }

    /// The record behind a reference, so that its transitions can sit inside `#expect`.
    final class Own {
        var state: OwnSemanticChanges
        var now: Int64 = 0
        init(_ state: OwnSemanticChanges = OwnSemanticChanges()) { self.state = state }
        var count: Int { state.count }
        func begin(_ change: SemanticChange) -> UInt64? { state.begin(change, now: now) }
        func landed(_ sequence: UInt64) { state.landed(sequence) }
        func failed(_ sequence: UInt64) { state.failed(sequence) }
        func published(_ sequence: UInt64, at id: String) { state.published(sequence, at: OwnSemanticChangesTests.id(id)) }
        /// What the tail applies after `change`, in order.
        func following(_ change: SemanticChange, at id: String? = nil, mine: UInt64? = nil) -> [SemanticChange] {
            state.passed(change, at: id.map(OwnSemanticChangesTests.id), ownSequence: mine, now: now)
        }
        /// The first of them (this instance's set or delete of the entry), when there is one.
        func after(_ change: SemanticChange, at id: String? = nil, mine: UInt64? = nil) -> SemanticChange? {
            following(change, at: id, mine: mine).first
        }
        /// Begun and landed here.
        func write(_ change: SemanticChange) -> UInt64 {
            let s = begin(change)!
            landed(s)
            return s
        }
    }

    @Test func anOlderChangeOfAnEntryChangedHereIsFollowedByThisChangeUntilTheStreamBringsIt() {
        let own = Own()
        let mine = own.write(Self.set("q", "new"))
        own.published(mine, at: "10-0")
        // Older changes of the entry: this instance's earlier answer, another's delete.
        #expect(Self.answer(own.after(Self.set("q", "old"), at: "8-0")) == "new")
        #expect(Self.answer(own.after(Self.delete("q"), at: "9-0")) == "new")
        // Other entries, other namespaces, verdicts: nothing after them.
        #expect(own.after(Self.set("other", "x"), at: "9-1") == nil)
        #expect(own.after(Self.set("q", "x", ns: "elsewhere"), at: "9-2") == nil)
        #expect(own.after(Self.verdicts("q"), at: "9-3") == nil)
        // This change itself comes round: the record goes, and later changes stand alone.
        #expect(own.after(Self.set("q", "new"), at: "10-0", mine: mine) == nil)
        #expect(own.count == 0)
        #expect(own.after(Self.delete("q"), at: "11-0") == nil)
    }

    @Test func theLatestLandedChangeOfTheEntryIsTheOneApplied() {
        let own = Own()
        let first = own.write(Self.set("q", "first"))
        let second = own.write(Self.delete("q"))
        guard case .delete? = own.after(Self.set("q", "older")) else { Issue.record("the delete, the later change, comes after"); return }
        // A write not landed yet is not applied by the tail: it lands after the tail's write.
        let third = own.begin(Self.set("q", "third"))!
        guard case .delete? = own.after(Self.set("q", "older")) else { Issue.record("the third write has not landed"); return }
        own.landed(third)
        #expect(Self.answer(own.after(Self.set("q", "older"))) == "third")
        // The stream brings the first two round: the third stands.
        #expect(Self.answer(own.after(Self.set("q", "first"), mine: first)) == "third")
        #expect(Self.answer(own.after(Self.delete("q"), mine: second)) == "third")
        #expect(own.count == 1)
    }

    @Test func theWriteThatLandedLastIsTheOneAppliedWhateverOrderTheyBegan() {
        // Two connections write one entry: the first to begin lands second, and the index holds it.
        let own = Own()
        let first = own.begin(Self.set("q", "began first"))!
        let second = own.begin(Self.set("q", "began second"))!
        own.landed(second)
        own.landed(first)
        #expect(Self.answer(own.after(Self.set("q", "older"))) == "began first")
    }

    @Test func entriesAreTheirNamesBytesNotEquivalentText() {
        let own = Own()
        _ = own.write(Self.set("caf\u{E9}", "composed"))
        // The same word decomposed is another entry to the index, and so here.
        #expect(own.after(Self.set("cafe\u{301}", "decomposed")) == nil)
        #expect(Self.answer(own.after(Self.set("caf\u{E9}", "older"))) == "composed")
    }

    @Test func aRecordGoesWhenTheTailPassesItsStreamIDEvenWithoutItsOrigin() {
        let own = Own()
        let mine = own.write(Self.set("q", "new"))
        own.published(mine, at: "10-5")
        #expect(Self.answer(own.after(Self.set("q", "old"), at: "10-4")) == "new")
        #expect(own.count == 1)
        // The stream was trimmed past it (the tail never met it): a later ID passes it all the same.
        #expect(own.after(Self.set("q", "later"), at: "10-6") == nil)
        #expect(own.count == 0)
    }

    @Test func aRecordGoesAfterItsMaximumAge() {
        let own = Own(OwnSemanticChanges(maxAge: 1_000))
        _ = own.write(Self.set("q", "new"))
        own.now = 1_000
        #expect(Self.answer(own.after(Self.set("q", "old"))) == "new")
        // A stream that lost it (a failover): it no longer follows every later change.
        own.now = 1_001
        #expect(own.after(Self.set("q", "another's")) == nil)
        #expect(own.count == 0)
    }

    @Test func aWriteThatFailsOrThatRedisDoesNotTakeLeavesNoRecord() {
        let own = Own()
        let refused = own.write(Self.set("q", "new"))
        own.failed(refused)
        #expect(own.count == 0)
        #expect(own.after(Self.set("q", "old")) == nil)
        // Published after it failed (an answer that came late): still nothing.
        own.published(refused, at: "1-0")
        #expect(own.count == 0)
    }

    @Test func aDropForgetsTheNamespacesRecordsAndVerdictsAreNotRecorded() {
        let own = Own()
        _ = own.write(Self.set("q", "new"))
        _ = own.write(Self.set("q", "new", ns: "kept"))
        // Another instance may create the namespace again, with another embedder: older
        // changes must then land as they come.
        #expect(own.after(.drop(namespace: "faq")) == nil)
        #expect(own.after(Self.set("q", "old")) == nil)
        #expect(Self.answer(own.after(Self.set("q", "old", ns: "kept"))) == "new")
        // This instance's own drop: no record, and the namespace's go.
        #expect(own.begin(.drop(namespace: "kept")) == nil)
        #expect(own.count == 0)
        #expect(own.begin(Self.verdicts("q")) == nil)
        #expect(own.count == 0)
    }

    @Test func verdictsRecordedHereFollowTheSetTheyJudgedAndNotAnOlderOne() {
        let own = Own()
        let set = own.write(Self.set("q", "answer"))
        let judged = own.state.record(verdicts: Self.verdicts("q"), now: 0)!
        // The stream brings the set back: stored afresh, then the verdicts joined in again.
        let after = own.following(Self.set("q", "answer"), mine: set)
        #expect(after.count == 1)
        if case .verdicts? = after.first {} else { Issue.record("the verdicts must follow: \(after)") }
        // Another instance's delete of the entry: the verdicts follow it too (they find nothing).
        #expect(own.following(Self.delete("q")).count == 1)
        // A set landed here after the verdicts replaced the answer they judged: it alone follows.
        _ = own.write(Self.set("q", "newer"))
        let later = own.following(Self.set("q", "older"))
        #expect(later.count == 1 && Self.answer(later.first) == "newer")
        // Verdicts on that answer: they follow it, after it.
        _ = own.state.record(verdicts: Self.verdicts("q"), now: 0)
        let both = own.following(Self.set("q", "older"))
        #expect(both.count == 2 && Self.answer(both.first) == "newer")
        if case .verdicts? = both.last {} else { Issue.record("the verdicts come after the set they judged: \(both)") }
        // Verdicts are never followed by anything; their record goes with their origin.
        #expect(own.following(Self.verdicts("q"), mine: judged).isEmpty)
        #expect(own.count == 2)
        // A set or delete passed to `record(verdicts:)` is not recorded.
        #expect(own.state.record(verdicts: Self.delete("q"), now: 0) == nil)
    }

    @Test func theBoundsDropTheOldestRecords() {
        let own = Own(OwnSemanticChanges(maxRecords: 3, maxBytes: 1 << 20))
        let sequences = (0..<5).map { own.write(Self.set("q\($0)", "a")) }
        #expect(own.count == 3)
        #expect(own.state.records.keys.sorted() == Array(sequences.suffix(3)))
        // A dropped record's entry takes older changes alone again (the moment of the older answer, never another end).
        #expect(own.after(Self.set("q0", "old")) == nil)
        #expect(Self.answer(own.after(Self.set("q4", "old"))) == "a")

        let small = Own(OwnSemanticChanges(maxRecords: 100, maxBytes: 1_000))
        for n in 0..<10 { _ = small.write(Self.set("q\(n)", String(repeating: "x", count: 300))) }
        // About 420 bytes each: two fit.
        #expect(small.count == 2 && small.state.bytes <= 1_000)
        // One record larger than the bound is kept alone.
        _ = small.write(Self.set("big", String(repeating: "x", count: 5_000)))
        #expect(small.count == 1)
    }

    @Test func streamIDsCompareInTheirOrder() {
        #expect(Self.id("9-9") < Self.id("10-0"))
        #expect(Self.id("10-2") < Self.id("10-10"))
        #expect(OwnSemanticChanges.StreamID("10") == nil)
        #expect(OwnSemanticChanges.StreamID("a-1") == nil)
        #expect(OwnSemanticChanges.StreamID("18446744073709551616-0") == nil)
    }

    @Test func anOriginNamesThisInstanceAndASequence() {
        #expect(RedisSemanticStore.sequence(in: "ab12:7", of: "ab12") == 7)
        #expect(RedisSemanticStore.sequence(in: "ab13:7", of: "ab12") == nil)
        #expect(RedisSemanticStore.sequence(in: "ab12", of: "ab12") == nil)
        #expect(RedisSemanticStore.sequence(in: "ab12:-1", of: "ab12") == nil)
    }

    // MARK: The tail's step on a real index

    /// A cache, this instance's records, and the tail's step and a local write on them.
    struct Instance {
        let cache: SemanticCache
        let local: EmbeddedSemanticStore
        let loop = EmbeddedEventLoop()
        let own = NIOLockedValueBox(OwnSemanticChanges())

        init(maxEntries: Int = 100) {
            cache = SemanticCache(defaultMaxEntries: maxEntries)
            // Small namespaces are written on the caller's thread: the lane is never used.
            local = EmbeddedSemanticStore(cache: cache, store: nil, lanes: [NIOThreadPool(numberOfThreads: 1)], offloadEntries: 1_000)
        }

        /// A write through this instance: recorded, then written by the embedded store, which
        /// marks it landed (what `RedisSemanticStore.set` / `delete` do before publishing).
        @discardableResult
        func write(_ change: SemanticChange) -> UInt64 {
            let s = own.withLockedValue { $0.begin(change, now: 0) }!
            let landing: @Sendable () -> Void = { [own] in own.withLockedValue { $0.landed(s) } }
            switch change {
            case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt, let worth):
                let write = SemanticWrite(namespace: ns, scope: scope, prompt: prompt, response: response, embedder: embedder, vector: vector,
                                          createdAt: createdAt, expiresAt: expiresAt, worth: worth)
                guard case .ready(.success) = local.set(write, on: loop, landing: landing) else { Issue.record("the set failed"); return s }
            case .delete(let ns, let scope, let prompt):
                guard case .ready(.success) = local.delete(namespace: ns, prompt: prompt, scope: scope, on: loop, landing: landing) else {
                    Issue.record("the delete failed")
                    return s
                }
            default:
                Issue.record("only sets and deletes are written here")
            }
            return s
        }

        let bindings = NIOLockedValueBox(StreamBindings())

        /// The tail's step, as the store's tail takes it.
        func follow(_ change: SemanticChange, mine: UInt64? = nil) {
            let bound = bindings.withLockedValue { $0.met(change) }
            RedisSemanticStore.follow(change, id: nil, origin: mine, bound: bound, own: own, cache: cache, now: 0)
        }

        func answer(_ prompt: String, ns: String = "faq", vector: [Float] = [1, 0, 0], embedder: String = "e") -> String? {
            guard case .hit(let m)? = try? cache.get(ns, prompt: prompt, vector: vector, embedder: embedder, scope: "", minScore: 0.99, now: 1).get()
            else { return nil }
            return String(buffer: m.entry.response)
        }

        func holds(_ prompt: String, ns: String = "faq") -> Bool {
            cache.read(ns) { $0.contains(prompt, scope: "") } ?? false
        }
    }

    @Test func theTailNeverShowsAnOlderAnswerOverThisInstancesNewerOne() {
        let here = Instance()
        let first = here.write(Self.set("q", "first"))
        let second = here.write(Self.set("q", "second"))
        here.follow(Self.set("q", "first"), mine: first)
        #expect(here.answer("q") == "second")
        here.follow(Self.set("q", "second"), mine: second)
        #expect(here.answer("q") == "second")
        // Deleted here; the stream brings an older set of it, from another instance.
        let deleted = here.write(Self.delete("q"))
        here.follow(Self.set("q", "another's"))
        #expect(!here.holds("q"))
        here.follow(Self.delete("q"), mine: deleted)
        #expect(!here.holds("q"))
        // Nothing of this instance's: the stream's changes stand alone.
        here.follow(Self.set("q", "another's"))
        #expect(here.answer("q") == "another's")
    }

    @Test func aBadVerdictRecordedHereDoesNotLapseWhenTheStreamBringsBackTheSetItJudged() throws {
        let here = Instance()
        let stored = Self.set("stored", "answer", vector: [1, 0, 0])
        let set = here.write(stored)
        // Asked at 0.8, judged bad: the entry no longer answers at 0.8 (its bar is above it).
        let asked: [Float] = [0.8, 0.6, 0]
        let query = SemanticQuery(namespace: "faq", prompt: "asked", scope: "", minScore: 0.7, embedder: "e", vector: asked)
        let landing: @Sendable (SemanticCache.Feedback) -> Void = { [own = here.own] feedback in
            _ = own.withLockedValue { $0.record(verdicts: SemanticChange(feedback, namespace: "faq"), now: 0) }
        }
        guard case .ready(.success(let feedback?)) = here.local.feedback(query, good: false, now: 1, on: here.loop, landing: landing) else {
            Issue.record("the verdict was not recorded")
            return
        }
        #expect(!feedback.deleted)
        func answersTheQuery() -> Bool {
            guard case .hit? = try? here.cache.get("faq", prompt: "asked", vector: asked, embedder: "e", scope: "", minScore: 0.7, now: 1).get()
            else { return false }
            return true
        }
        #expect(!answersTheQuery())
        // The stream brings the set back (stored afresh), before the verdicts come round.
        here.follow(stored, mine: set)
        #expect(!answersTheQuery())
    }

    @Test func anOlderChangeStillDoesAllItDoesBesidesTheEntry() {
        // The namespace does not exist here yet; this instance deletes an entry of it, while the
        // stream creates it, bound to an embedder, with that entry.
        let here = Instance()
        let deleted = here.write(Self.delete("q", ns: "new"))
        here.follow(Self.set("q", "another's", ns: "new", vector: [0, 1, 0], embedder: "client"))
        #expect(here.cache.info("new") != nil)
        #expect(!here.holds("q", ns: "new"))
        // Bound as on every other instance: a vector of another embedder is refused here too.
        let other = here.cache.set("new", prompt: "p", response: ByteBuffer(string: "x"), vector: [1, 0, 0, 0], embedder: "builtin",
                                   scope: "", createdAt: 2, expiresAt: 0)
        guard case .failure(.embedderMismatch) = other else { Issue.record("the namespace must be bound as the stream bound it: \(other)"); return }
        here.follow(Self.delete("q", ns: "new"), mine: deleted)
        #expect(!here.holds("q", ns: "new"))

        // A full namespace: the older set evicts its oldest entry as on every other instance,
        // then this instance's delete of that entry follows it.
        let full = Instance(maxEntries: 2)
        full.follow(Self.set("o1", "x", vector: [0, 1, 0]))
        full.follow(Self.set("o2", "x", vector: [0, 0, 1]))
        full.write(Self.delete("q"))
        full.follow(Self.set("q", "another's"))
        #expect(!full.holds("q") && !full.holds("o1") && full.holds("o2"))
    }

    @Test func aNamespaceBoundHereOtherwiseThanTheStreamBindsItIsMadeAgainFromTheStream() {
        // This instance creates a namespace with client vectors while another creates it with the
        // built-in embedder, first in the stream: every instance replaying the stream binds it to
        // the built-in embedder and refuses this instance's write.
        let here = Instance()
        let mine = here.write(Self.set("mine", "x", ns: "both", vector: [1, 0, 0], embedder: "client"))
        here.write(Self.set("also mine", "y", ns: "both", vector: [0, 1, 0], embedder: "client"))
        here.follow(Self.set("theirs", "z", ns: "both", vector: [1, 0, 0, 0], embedder: "builtin"))
        #expect(here.cache.info("both")?.embedder == "builtin")
        #expect(here.answer("theirs", ns: "both", vector: [1, 0, 0, 0], embedder: "builtin") == "z")
        #expect(!here.holds("mine", ns: "both") && !here.holds("also mine", ns: "both"))
        // This instance's write comes round, and is refused here as everywhere.
        here.follow(Self.set("mine", "x", ns: "both", vector: [1, 0, 0], embedder: "client"), mine: mine)
        #expect(!here.holds("mine", ns: "both") && here.cache.info("both")?.entries == 1)

        // Bound as the stream binds it: nothing is made again.
        let same = Instance()
        same.write(Self.set("mine", "x", ns: "both"))
        same.follow(Self.set("theirs", "z", ns: "both", vector: [0, 1, 0]))
        #expect(same.holds("mine", ns: "both") && same.holds("theirs", ns: "both"))
        // After a drop in the stream the next set binds the namespace again.
        same.follow(.drop(namespace: "both"))
        same.write(Self.set("mine", "x", ns: "both", vector: [1, 0, 0, 0], embedder: "builtin"))
        same.follow(Self.set("theirs", "z", ns: "both", vector: [0, 1, 0]))
        #expect(same.cache.info("both")?.embedder == "e" && !same.holds("mine", ns: "both"))
    }

    @Test func theStreamsBindingsAreTheFirstSetAfterTheLastDropWithinTheirBound() {
        var b = StreamBindings(maxNamespaces: 2)
        #expect(b.met(Self.set("q", "x", ns: "a", vector: [1, 0], embedder: "one")) == StreamBindings.Binding(embedder: "one", dimension: 2))
        #expect(b.met(Self.set("q", "x", ns: "a", vector: [1, 0, 0], embedder: "two")) == StreamBindings.Binding(embedder: "one", dimension: 2))
        #expect(b.met(Self.delete("q", ns: "a")) == nil)
        #expect(b.met(.drop(namespace: "a")) == nil)
        #expect(b.met(Self.set("q", "x", ns: "a", vector: [1, 0, 0], embedder: "two")) == StreamBindings.Binding(embedder: "two", dimension: 3))
        // An empty vector binds nothing; past the bound, namespaces are not followed.
        #expect(b.met(Self.set("q", "x", ns: "b", vector: [])) == nil)
        #expect(b.met(Self.set("q", "x", ns: "b")) != nil)
        #expect(b.met(Self.set("q", "x", ns: "c")) == nil)
        #expect(b.bindings.count == 2)
    }
}
