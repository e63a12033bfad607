import Dispatch
import Testing
@testable import SluiceDomain

/// Candidates' analyses kept between lookups: made once per text, the verifier's verdicts the
/// same with them as without, and bounded.
@Suite("Candidates' analyses kept")
struct CandidateTokensTests {
    @Test func anAnalysisIsMadeOnceAndTheVerdictsStayTheSame() throws {
        let lexicon = try #require(Lexicon.builtIn)
        let kept = CandidateTokens()
        var made = 0
        for _ in 0..<3 {
            _ = kept.tokens("How do I reset my password?") {
                made += 1
                return PromptTokens("How do I reset my password?", lexicon: lexicon)
            }
        }
        #expect(made == 1 && kept.count == 1)
        // What comes back is that text's analysis, not another's.
        let other = kept.tokens("Where is my invoice?") { PromptTokens("Where is my invoice?", lexicon: lexicon) }
        let again = kept.tokens("How do I reset my password?") { PromptTokens("Where is my invoice?", lexicon: lexicon) }
        #expect(again.tokens.map(\.lemma) == PromptTokens("How do I reset my password?", lexicon: lexicon).tokens.map(\.lemma))
        #expect(other.tokens.map(\.lemma) != again.tokens.map(\.lemma))
        made = 1
        // The same text in other bytes (composed and decomposed é) is another analysis.
        _ = kept.tokens("caf\u{E9}") { made += 1; return PromptTokens("caf\u{E9}", lexicon: lexicon) }
        _ = kept.tokens("cafe\u{301}") { made += 1; return PromptTokens("cafe\u{301}", lexicon: lexicon) }
        #expect(made == 3)
        // Verdicts with a warm store are those of a fresh verifier, pair by pair.
        let pairs = [("How do I reset my password?", "How can I reset my password?"),
                     ("How do I reset my password?", "How do I reset my username?"),
                     ("What is 15% of 200?", "What is 20% of 200?"),
                     ("Explain quantum computing to a child", "Explain quantum computing to a software engineer"),
                     ("Is it safe to swim after eating", "Is it secure to bathe after dining")]
        let warm = PromptVerifier(lexicon: lexicon)
        for round in 0..<2 {
            for (query, candidate) in pairs {
                let fresh = PromptVerifier(lexicon: lexicon)
                #expect(warm.refusal(query, candidate) == fresh.refusal(query, candidate), "\(query) / \(candidate)")
                #expect(warm.refusal(candidate, query) == fresh.refusal(candidate, query), "\(candidate) / \(query)")
            }
            // The second round is answered from kept analyses.
            if round == 0 { #expect(warm.candidates.count >= pairs.count) }
        }
    }

    @Test func theStoreIsBounded() throws {
        let lexicon = try #require(Lexicon.builtIn)
        let kept = CandidateTokens()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for n in 0..<(CandidateTokens.capacity) {
                let text = "question \(worker) number \(n)"
                _ = kept.tokens(text) { PromptTokens(text, lexicon: lexicon) }
            }
        }
        #expect(kept.count <= CandidateTokens.capacity && kept.count >= CandidateTokens.capacity / 2)
        // Nor one of more tokens than the verifier judges word by word (the basic checks do
        // not use them).
        let wordy = (0..<(PromptVerifier.maxTokens + 1)).map { "w\($0)" }.joined(separator: " ")
        let empty = CandidateTokens()
        _ = empty.tokens(wordy) { PromptTokens(wordy, lexicon: lexicon) }
        _ = empty.tokens("a short one") { PromptTokens("a short one", lexicon: lexicon) }
        #expect(empty.count == 1)
        // A prompt over the line is analysed each time, not kept.
        let long = String(repeating: "word ", count: CandidateTokens.longestPrompt / 5 + 1)
        var made = 0
        for _ in 0..<2 { _ = empty.tokens(long) { made += 1; return PromptTokens(long, lexicon: lexicon) } }
        #expect(made == 2 && empty.count == 1)
    }
}
