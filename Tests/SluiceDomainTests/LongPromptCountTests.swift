import NIOCore
import Testing
@testable import SluiceDomain

/// A namespace sends its lookups to a lane while it holds a prompt over the long line: counted
/// over the live entries, so a write it refused does not count, and one deleted, replaced or
/// evicted stops counting.
@Suite("Long prompts held by a namespace")
struct LongPromptCountTests {
    static let long = String(repeating: "word ", count: SemanticNamespace.longPromptBytes / 5 + 1)

    static func set(_ ns: inout SemanticNamespace, _ prompt: String, embedder: String = "e", vector: [Float] = [1, 0, 0]) -> Bool {
        if case .success = ns.set(prompt, response: ByteBuffer(string: "a"), vector: vector, embedder: embedder, scope: "",
                                  createdAt: 1, expiresAt: 0) { return true }
        return false
    }

    @Test func textThatIsNotASCIIIsLongAtAQuarterOfTheLine() {
        let quarter = SemanticNamespace.longPromptBytes / 4
        let ascii = String(repeating: "x", count: quarter + 100), accented = String(repeating: "é", count: quarter / 2 + 1)
        #expect(!SemanticNamespace.isLong(ascii))
        #expect(accented.utf8.count == quarter + 2 && SemanticNamespace.isLong(accented))
        #expect(!SemanticNamespace.isLong(String(repeating: "é", count: quarter / 2)))  // exactly a quarter
        #expect(SemanticNamespace.isLong(String(repeating: "x", count: SemanticNamespace.longPromptBytes + 1)))
        var ns = SemanticNamespace(maxEntries: 4)
        #expect(Self.set(&ns, ascii) && !ns.holdsLongPrompts)
        #expect(Self.set(&ns, accented) && ns.longPrompts == 1)
        #expect(ns.delete(accented, scope: "") && !ns.holdsLongPrompts)
    }

    @Test func onlyLiveEntriesCount() {
        var ns = SemanticNamespace(maxEntries: 2)
        #expect(Self.set(&ns, "short question"))
        #expect(!ns.holdsLongPrompts)
        // Exactly at the line is not long.
        #expect(Self.set(&ns, String(repeating: "x", count: SemanticNamespace.longPromptBytes)) && !ns.holdsLongPrompts)
        #expect(Self.set(&ns, Self.long) && ns.holdsLongPrompts && ns.longPrompts == 1)
        // Replaced by itself: still one.
        #expect(Self.set(&ns, Self.long) && ns.longPrompts == 1)
        let deleted = ns.delete(Self.long, scope: "")
        #expect(deleted)
        #expect(!ns.holdsLongPrompts && ns.longPrompts == 0)
        // Refused (another embedder, a vector that cannot be normalised): not counted.
        #expect(!Self.set(&ns, Self.long, embedder: "other"))
        #expect(!Self.set(&ns, Self.long, vector: [0, 0, 0]))
        #expect(!ns.holdsLongPrompts)
        // Evicted as the oldest: no longer counted.
        #expect(Self.set(&ns, Self.long) && ns.holdsLongPrompts)
        #expect(Self.set(&ns, "one more") && Self.set(&ns, "and another"))
        #expect(!ns.holdsLongPrompts && ns.longPrompts == 0)
        // Expired entries swept away: no longer counted.
        _ = ns.set(Self.long, response: ByteBuffer(), vector: [1, 0, 0], embedder: "e", scope: "", createdAt: 1, expiresAt: 5)
        #expect(ns.holdsLongPrompts)
        ns.sweep(now: 6)
        #expect(!ns.holdsLongPrompts)
    }
}
