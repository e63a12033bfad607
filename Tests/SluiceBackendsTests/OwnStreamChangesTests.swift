import Testing
@testable import SluiceBackends

/// The tail skips older changes of an entry this instance changed since, until its own change
/// comes round; everything else is applied in stream order.
@Suite("Own changes met again in the stream")
struct OwnStreamChangesTests {
    let q = OwnStreamChanges.Entry(namespace: "faq", scope: "", prompt: "How do I reset my password?")
    let other = OwnStreamChanges.Entry(namespace: "faq", scope: "", prompt: "What is a lease?")

    func id(_ s: String) -> OwnStreamChanges.ID { OwnStreamChanges.ID(s)! }

    /// `applies` outside `#expect` (which cannot take a mutating call).
    func applies(_ own: inout OwnStreamChanges, _ entry: OwnStreamChanges.Entry, _ at: String) -> Bool {
        own.applies(entry, at: id(at))
    }

    @Test func idsAreOrderedAsRedisOrdersThem() {
        #expect(id("1700000000000-0") < id("1700000000000-1"))
        #expect(id("1700000000000-9") < id("1700000000001-0"))
        #expect(id("9-0") < id("10-0"))  // numbers, not text
        #expect(OwnStreamChanges.ID("1700000000000") == nil && OwnStreamChanges.ID("a-1") == nil && OwnStreamChanges.ID("") == nil)
    }

    @Test func olderChangesOfTheEntryAreSkippedUntilOwnComesRound() {
        var own = OwnStreamChanges()
        own.published(q, at: id("100-3"))
        // Older changes of the entry (this instance's previous one, another's): skipped.
        #expect(!applies(&own, q, "100-1"))
        #expect(!applies(&own, q, "99-7"))
        // Other entries: applied.
        #expect(applies(&own, other, "100-2"))
        // Its own change comes round: applied again (an older drop of the namespace may have
        // taken the entry), and forgotten.
        #expect(applies(&own, q, "100-3"))
        #expect(own.latest.isEmpty)
        #expect(applies(&own, q, "100-4"))
    }

    @Test func theLatestOwnChangeCounts() {
        var own = OwnStreamChanges()
        own.published(q, at: id("200-0"))
        own.published(q, at: id("100-0"))  // an earlier reply arriving late does not move it back
        #expect(!applies(&own, q, "150-0"))
        #expect(applies(&own, q, "200-0"))
        // Own change already met before its reply was handled: the next change of the entry
        // (from anyone) clears it.
        own.published(other, at: id("300-0"))
        #expect(applies(&own, other, "301-0") && own.latest.isEmpty)
    }

    @Test func boundedByForgettingAll() {
        var own = OwnStreamChanges()
        for i in 0..<OwnStreamChanges.maxTracked {
            own.published(.init(namespace: "n", scope: "", prompt: String(i)), at: id("\(i)-0"))
        }
        #expect(own.latest.count == OwnStreamChanges.maxTracked)
        own.published(q, at: id("1-0"))
        #expect(own.latest.count == 1)
        #expect(applies(&own, .init(namespace: "n", scope: "", prompt: "5"), "1-0"))
    }
}
