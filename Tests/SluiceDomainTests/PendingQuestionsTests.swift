import Dispatch
import Testing
@testable import SluiceDomain

/// LLM.GET's questions in flight: a paraphrase of one waits for it; anything else, and anything
/// once the question is answered or its lease ran out, takes a lease of its own.
///
/// The vectors are made up (one direction per question, so that the search proposes exactly
/// what a test means it to); the verifier is the real one, and decides on the texts.
@Suite("Questions in flight")
struct PendingQuestionsTests {
    static let verifier = PromptVerifier.builtIn

    /// A unit vector along axis `axis` of 8, tilted a little towards the next axis.
    static func vector(_ axis: Int, tilt: Float = 0) -> [Float] {
        var v = [Float](repeating: 0, count: 8)
        v[axis % 8] = 1
        v[(axis + 1) % 8] = tilt
        return v
    }

    static func ask(_ pending: PendingQuestions, _ prompt: String, axis: Int = 0, tilt: Float = 0.05, scope: String = "",
                    namespace: String = "faq", minScore: Float = 0.7, now: Int64 = 1_000, until: Int64 = 11_000) -> String? {
        pending.waitOrRecord(namespace: namespace, scope: scope, prompt: prompt, vector: vector(axis, tilt: tilt), embedder: "test",
                             minScore: minScore, now: now, expiresAt: until)
    }

    @Test func aParaphraseWaitsForTheQuestionInFlightAndOthersDoNot() throws {
        let pending = PendingQuestions(verifier: try #require(Self.verifier))
        #expect(Self.ask(pending, "How do I reset my password?", tilt: 0) == nil)
        #expect(Self.ask(pending, "How can I reset my password?") == "How do I reset my password?")
        // The verifier refuses a trap however near its vector: recorded, so it is waited for in turn.
        #expect(Self.ask(pending, "How do I reset my username?") == nil)
        #expect(Self.ask(pending, "How could I reset my username?") == "How do I reset my username?")
        // Far by cosine, in another scope or namespace, or under a stricter bar: their own.
        #expect(Self.ask(pending, "Where is my invoice?", axis: 3) == nil)
        #expect(Self.ask(pending, "How can I reset my password?", scope: "u2") == nil)
        #expect(Self.ask(pending, "How can I reset my password?", namespace: "help") == nil)
        #expect(Self.ask(pending, "How would I reset my password?", tilt: 0.5, minScore: 0.99) == nil)
        #expect(pending.summary.questions == 6)
    }

    @Test func anAnsweredOrExpiredQuestionIsNoLongerWaitedFor() throws {
        let pending = PendingQuestions(verifier: try #require(Self.verifier))
        #expect(Self.ask(pending, "How do I reset my password?", tilt: 0, until: 5_000) == nil)
        #expect(Self.ask(pending, "How can I reset my password?", now: 4_999) == "How do I reset my password?")
        // The lease ran out: the paraphrase is recorded in its place.
        #expect(Self.ask(pending, "How can I reset my password?", now: 5_000) == nil)
        pending.answered(namespace: "faq", scope: "", prompt: "How can I reset my password?")
        #expect(Self.ask(pending, "How do I reset my password?", now: 5_001) == nil)
        // A record of this very question (its lease ran out a moment before the record did,
        // and it was granted again) is recorded again, not waited for.
        #expect(Self.ask(pending, "How do I reset my password?", now: 5_002) == nil)
        pending.answered(namespace: "faq", scope: "", prompt: "How do I reset my password?")
        pending.answered(namespace: "faq", scope: "", prompt: "never asked")
        #expect(pending.summary.questions == 0 && pending.summary.bytes == 0)
    }

    @Test func theRecordIsBounded() throws {
        let pending = PendingQuestions(verifier: try #require(Self.verifier))
        // Per namespace: the oldest give way.
        for n in 0..<(PendingQuestions.maxPerNamespace + 10) {
            #expect(Self.ask(pending, "question number \(n)", axis: n, tilt: 0) == nil)
        }
        #expect(pending.summary.questions == PendingQuestions.maxPerNamespace)
        // Namespaces: past the bound a question is not recorded, and nothing waits for it.
        for n in 1..<PendingQuestions.maxNamespaces {
            _ = Self.ask(pending, "How do I reset my password?", tilt: 0, namespace: "ns\(n)")
        }
        #expect(Self.ask(pending, "How do I reset my password?", tilt: 0, namespace: "one too many") == nil)
        #expect(Self.ask(pending, "How can I reset my password?", namespace: "one too many") == nil)
        // A prompt the verifier would read for milliseconds: neither recorded nor matched.
        let long = "How do I reset my password? " + String(repeating: "Please tell me. ", count: PendingQuestions.longestPrompt / 16)
        let fresh = PendingQuestions(verifier: Self.verifier)
        #expect(Self.ask(fresh, long, tilt: 0) == nil)
        #expect(fresh.summary.questions == 0)
        #expect(pending.summary.bytes > 0 && pending.summary.bytes <= PendingQuestions.maxBytes)
    }

    /// Two paraphrases in a race: the other is recorded after this one searched and before it
    /// records. This one looks again, and waits for it.
    @Test func aParaphraseRecordedDuringTheSearchIsWaitedFor() throws {
        let pending = PendingQuestions(verifier: try #require(Self.verifier))
        var raced = false
        let got = pending.waitOrRecord(namespace: "faq", scope: "", prompt: "How can I reset my password?", vector: Self.vector(0, tilt: 0.05),
                                       embedder: "test", minScore: 0.7, now: 1_000, expiresAt: 11_000, betweenSearchAndLock: {
            guard !raced else { return }
            raced = true
            #expect(Self.ask(pending, "How do I reset my password?", tilt: 0) == nil)
        })
        #expect(got == "How do I reset my password?")
        #expect(pending.summary.questions == 1)
    }

    /// Paraphrases asked at the same moment on several threads: exactly one is recorded, and
    /// every other one waits for it. (Each wording once: an identical question never gets this
    /// far while its own key's lease is out.)
    @Test func ofParaphrasesAskedAtOnceOneIsRecorded() throws {
        let wordings = ["How do I reset my password?", "How can I reset my password?", "how do i reset my password",
                        "How do I reset my password, please?", "What is the way to reset my password?"]
        for round in 0..<50 {
            let pending = PendingQuestions(verifier: try #require(Self.verifier))
            let recorded = Locked(0)
            DispatchQueue.concurrentPerform(iterations: wordings.count) { i in
                if Self.ask(pending, wordings[i], tilt: Float(i) * 0.01) == nil {
                    recorded.withLock { $0 += 1 }
                }
            }
            #expect(recorded.withLock { $0 } == 1, "round \(round)")
        }
    }
}
