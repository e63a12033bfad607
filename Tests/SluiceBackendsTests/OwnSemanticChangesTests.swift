import NIOCore
import SluiceDomain
import Testing
@testable import SluiceBackends

/// `OwnSemanticChanges`, the shared semantic store's record of this instance's changes until the
/// stream tail passes them: which older stream changes the tail passes over, and when a record
/// goes. (The store with real redis-servers: `tests/e2e/test_shared_mode.py`.)
@Suite("An instance's own semantic changes, until the stream passes them")
struct OwnSemanticChangesTests {
    static func set(_ prompt: String, _ answer: String, ns: String = "faq") -> SemanticChange {
        .set(namespace: ns, scope: "", prompt: prompt, response: ByteBuffer(string: answer), embedder: "e", vector: [1, 0],
             createdAt: 1, expiresAt: 0)
    }
    static func delete(_ prompt: String, ns: String = "faq") -> SemanticChange {
        .delete(namespace: ns, scope: "", prompt: prompt)
    }
    static func verdicts(_ prompt: String, ns: String = "faq") -> SemanticChange {
        .verdicts(namespace: ns, scope: "", prompt: prompt, createdAt: 1, Verdicts())
    }
    static func id(_ text: String) -> OwnSemanticChanges.StreamID { OwnSemanticChanges.StreamID(text)! }

    /// The record behind a reference, so that its transitions can sit inside `#expect`.
    final class Own {
        var state: OwnSemanticChanges
        init(_ state: OwnSemanticChanges = OwnSemanticChanges()) { self.state = state }
        var count: Int { state.count }
        func begin(_ change: SemanticChange) -> UInt64? { state.begin(change) }
        func applied(_ sequence: UInt64) -> [SemanticChange] { state.applied(sequence) }
        func failed(_ sequence: UInt64) { state.failed(sequence) }
        func published(_ sequence: UInt64, at id: String) { state.published(sequence, at: OwnSemanticChangesTests.id(id)) }
        /// What the tail applies again after its last change.
        var again: [SemanticChange] = []
        /// Whether the tail applies `change` (the tail's step with nothing landing in between).
        func applies(_ change: SemanticChange, at id: String? = nil, mine: UInt64? = nil) -> Bool {
            guard decides(change, at: id, mine: mine) else { return false }
            again = state.landed(change)
            return true
        }
        /// The tail's decision alone (it then applies the change outside the lock).
        func decides(_ change: SemanticChange, at id: String? = nil, mine: UInt64? = nil) -> Bool {
            state.passed(change, at: id.map(OwnSemanticChangesTests.id), ownSequence: mine)
        }
        /// Applied here: begun, then done, not overtaken.
        func write(_ change: SemanticChange) -> UInt64 {
            let s = begin(change)!
            #expect(applied(s).isEmpty)
            return s
        }
    }

    @Test func anOlderSetOrDeleteOfAnEntryChangedHereIsPassedOverUntilTheStreamBringsThisChange() {
        let own = Own()
        let mine = own.write(Self.set("q", "new"))
        own.published(mine, at: "10-0")
        // Older changes of the entry: this instance's earlier answer, another's delete.
        #expect(!own.applies(Self.set("q", "old"), at: "8-0"))
        #expect(!own.applies(Self.delete("q"), at: "9-0"))
        // Other entries, other namespaces, verdicts: applied as they come.
        #expect(own.applies(Self.set("other", "x"), at: "9-1"))
        #expect(own.applies(Self.set("q", "x", ns: "elsewhere"), at: "9-2"))
        #expect(own.applies(Self.verdicts("q"), at: "9-3"))
        // This change itself comes round: applied (harmless again), and the record goes.
        #expect(own.applies(Self.set("q", "new"), at: "10-0", mine: mine))
        #expect(own.count == 0)
        // Later changes of the entry, from anyone, are applied.
        #expect(own.applies(Self.delete("q"), at: "11-0"))
    }

    @Test func entriesAreTheirNamesBytesNotEquivalentText() {
        let own = Own()
        _ = own.write(Self.set("caf\u{E9}", "composed"))
        // The same word decomposed is another entry to the index, and so here.
        #expect(own.applies(Self.set("cafe\u{301}", "decomposed")))
        #expect(!own.applies(Self.set("caf\u{E9}", "older")))
    }

    @Test func aRecordGoesWhenTheTailPassesItsStreamIDEvenWithoutItsOrigin() {
        let own = Own()
        let mine = own.write(Self.set("q", "new"))
        own.published(mine, at: "10-5")
        #expect(!own.applies(Self.set("q", "old"), at: "10-4"))
        #expect(own.count == 1)
        // The stream was trimmed past it (the tail never met it): a later ID passes it all the same.
        #expect(own.applies(Self.set("q", "later"), at: "10-6"))
        #expect(own.count == 0)
    }

    @Test func aWriteThatFailsOrThatRedisDoesNotTakeLeavesNoRecord() {
        let own = Own()
        let refused = own.write(Self.set("q", "new"))
        own.failed(refused)
        #expect(own.count == 0)
        #expect(own.applies(Self.set("q", "old")))
        // Published after it failed (an answer that came late): still nothing.
        own.published(refused, at: "1-0")
        #expect(own.count == 0)
    }

    @Test func aDropForgetsTheNamespacesRecords() {
        let own = Own()
        _ = own.write(Self.set("q", "new"))
        _ = own.write(Self.set("q", "new", ns: "kept"))
        // Another instance may create the namespace again, with another embedder: an older
        // change must then land as it comes.
        #expect(own.applies(.drop(namespace: "faq")))
        #expect(own.applies(Self.set("q", "old")))
        #expect(!own.applies(Self.set("q", "old", ns: "kept")))
        // This instance's own drop: no record, and the namespace's go.
        #expect(own.begin(.drop(namespace: "kept")) == nil)
        #expect(own.count == 0)
    }

    @Test func aWriteUnderWayIsNotPassedOverButAppliedAgainWhenOvertaken() {
        let own = Own()
        let first = own.write(Self.set("q", "first"))
        own.published(first, at: "5-0")
        #expect(own.applies(Self.set("q", "first"), at: "5-0", mine: first))
        // Begun, not yet applied: its write may still fail, so an older change is applied...
        let second = own.begin(Self.set("q", "second"))!
        #expect(own.applies(Self.set("q", "older"), at: "6-0"))
        // ...and the write, once done, applies the entry's own changes again (it may have landed first).
        let again = own.applied(second)
        #expect(again.count == 1)
        if case .set(_, _, _, let response, _, _, _, _, _)? = again.first { #expect(response == ByteBuffer(string: "second")) }
        // Not overtaken: nothing to apply again.
        let third = own.begin(Self.set("q", "third"))!
        #expect(own.applied(third).isEmpty)
        // With a change of the entry standing here, an older one is passed over: nothing overtakes a write under way.
        let fourth = own.begin(Self.delete("q"))!
        #expect(!own.applies(Self.set("q", "older"), at: "6-1"))
        #expect(own.applied(fourth).isEmpty)

        // Two writes under way, overtaken: the second to finish applies both again, in their order.
        let other = Own()
        let a = other.begin(Self.set("p", "a"))!, b = other.begin(Self.delete("p"))!
        #expect(other.applies(Self.set("p", "older")))
        #expect(other.applied(a).count == 1)
        let both = other.applied(b)
        #expect(both.count == 2)
        if case .delete? = both.last {} else { Issue.record("the delete, begun second, must come last: \(both)") }
    }

    @Test func aWriteThatLandsWhileTheTailAppliesAnOlderChangeIsAppliedAgainAfterIt() {
        let own = Own()
        // The tail decides to apply an older set of the entry (nothing of this instance's there)...
        #expect(own.decides(Self.set("q", "older")))
        // ...a write of the entry begins and is done before the tail's apply lands...
        _ = own.write(Self.set("q", "mine"))
        // ...so the tail applies it again after its change.
        let again = own.state.landed(Self.set("q", "older"))
        #expect(again.count == 1)
        if case .set(_, _, _, let response, _, _, _, _, _)? = again.first { #expect(response == ByteBuffer(string: "mine")) }
        // A write still under way then is marked, and applies it again once done.
        #expect(own.decides(Self.delete("p")))
        let underWay = own.begin(Self.set("p", "mine"))!
        #expect(own.state.landed(Self.delete("p")).isEmpty)
        #expect(own.applied(underWay).count == 1)
        // Verdicts and drops never bring anything back.
        #expect(own.state.landed(Self.verdicts("q")).isEmpty)
        #expect(own.state.landed(.drop(namespace: "faq")).isEmpty)
    }

    @Test func theBoundsDropTheOldestRecords() {
        let own = Own(OwnSemanticChanges(maxRecords: 3, maxBytes: 1 << 20))
        let sequences = (0..<5).map { own.write(Self.set("q\($0)", "a")) }
        #expect(own.count == 3)
        #expect(own.state.records.keys.sorted() == Array(sequences.suffix(3)))
        // A dropped record's entry takes older changes again (the moment of the older answer, never another end).
        #expect(own.applies(Self.set("q0", "old")))
        #expect(!own.applies(Self.set("q4", "old")))

        let small = Own(OwnSemanticChanges(maxRecords: 100, maxBytes: 1_000))
        for n in 0..<10 { _ = small.write(Self.set("q\(n)", String(repeating: "x", count: 300))) }
        #expect(small.state.bytes <= 1_000 && small.count >= 1)
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
}
