import NIOCore
import Testing
@testable import SluiceDomain

/// LLM.GET's exact-layer entries, and the check a written-back copy makes against the semantic
/// entry it came from.
@Suite("LLM entries and their semantic source")
struct LLMEntryTests {
    @Test func keysKeepNamespaceScopeAndPromptApart() {
        #expect(String(buffer: LLMEntry.key(namespace: "faq", scope: "", prompt: "Hi?")) == "llm:3:faq:0::Hi?")
        #expect(LLMEntry.key(namespace: "a:b", scope: "c", prompt: "d") != LLMEntry.key(namespace: "a", scope: "b:c", prompt: "d"))
        #expect(LLMEntry.key(namespace: "a", scope: "", prompt: "b:c") != LLMEntry.key(namespace: "a", scope: "b", prompt: "c"))
    }

    @Test func entriesRoundTripAndForeignValuesAreAnswers() {
        let stored = LLMEntry(answer: ByteBuffer(string: "Use the link."))
        #expect(LLMEntry.decode(stored.encoded().readableBytesView) == stored)
        let copy = LLMEntry(answer: ByteBuffer(string: "A"), source: .init(prompt: "How do I?", createdAt: 42, score: 0.875))
        #expect(LLMEntry.decode(copy.encoded().readableBytesView) == copy)
        // Something else wrote under an llm: key: its bytes are the answer.
        #expect(LLMEntry.decode(Array("plain".utf8)) == LLMEntry(answer: ByteBuffer(string: "plain")))
        // A truncated copy is not trusted as one.
        let truncated = Array(copy.encoded().readableBytesView.prefix(9))
        #expect(LLMEntry.decode(truncated).source == nil)
    }

    @Test func aCopyStandsOnlyWhileItsEntryWouldStillAnswerIt() throws {
        let c = SemanticCache(defaultMinScore: 0.7)
        _ = c.set("ns", prompt: "stored", response: ByteBuffer(string: "a"), vector: [1, 0, 0], embedder: "client", scope: "", createdAt: 5, expiresAt: 0)
        let answer = ByteBuffer(string: "a")
        #expect(c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.8, query: nil, now: 1))
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.6, query: nil, now: 1))  // under the bar
        // Under the bar the reader asks for, as its lookup would be: a copy made for a laxer
        // reader stands for it (not retired and made again on each read), not for a stricter one.
        #expect(c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.6, minScore: 0.5, query: nil, now: 1))
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.8, minScore: 0.9, query: nil, now: 1))
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 4, answer: answer, score: 0.9, query: nil, now: 1))  // another version
        // Another answer stored within the same millisecond: the version is the same, the copy's answer is not.
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: ByteBuffer(string: "b"), score: 0.9, query: nil, now: 1))
        #expect(!c.stillAnswers("ns", scope: "other", prompt: "stored", createdAt: 5, answer: answer, score: 0.9, query: nil, now: 1))
        #expect(!c.stillAnswers("nope", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.9, query: nil, now: 1))
        // A bad verdict at 0.8 raises the entry's threshold above 0.8: that copy retires, a closer one stands.
        let v: [Float] = [0.8, 0.6, 0]
        _ = try c.feedback("ns", prompt: "asked", vector: v, embedder: "client", scope: "", minScore: nil, good: false, now: 1).get()
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.8, query: nil, now: 1))
        #expect(c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.95, query: nil, now: 1))
        // A laxer reader's bar does not lower the raised threshold.
        #expect(!c.stillAnswers("ns", scope: "", prompt: "stored", createdAt: 5, answer: answer, score: 0.8, minScore: 0.5, query: nil, now: 1))
    }

    /// The length LLM.GET and LLM.SET check against the request limit is the key's own, at
    /// every digit count of the namespace's and the scope's lengths.
    @Test func keyLengthIsTheKeys() {
        for (ns, scope, prompt) in [(0, 0, 0), (3, 0, 10), (9, 9, 1), (10, 0, 5), (99, 100, 7), (1024, 1024, 100_000)] {
            let key = LLMEntry.key(namespace: String(repeating: "n", count: ns), scope: String(repeating: "s", count: scope),
                                   prompt: String(repeating: "p", count: prompt))
            #expect(LLMEntry.keyLength(namespace: ns, scope: scope, prompt: prompt) == key.readableBytes, "\(ns) \(scope) \(prompt)")
        }
    }
}
