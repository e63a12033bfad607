import Testing
@testable import SluiceDomain

@Suite("Trap guard")
struct TrapGuardTests {
    @Test(arguments: [
        ("What is 15% of 200?", "What is 20% of 200?", TrapGuard.Verdict.numbers),
        ("Summarise the Q3 2024 report", "Summarise the Q3 2023 report", .numbers),
        ("Is ibuprofen safe during pregnancy?", "Is ibuprofen not safe during pregnancy?", .negation),
        ("Can I delete the default branch?", "Can't I delete the default branch?", .negation),
        ("What is the capital of France?", "What is the capital of Spain?", .names),
        ("What is the function of TV?", "What is the function of money?", .names),
        ("How do I call get_user_by_id?", "How do I call get_user_by_name?", .names),
    ])
    func trapsAreRefused(query: String, candidate: String, verdict: TrapGuard.Verdict) {
        #expect(TrapGuard.check(query, candidate) == verdict)
    }

    @Test(arguments: [
        ("What is the capital of France?", "Which city is the capital of France?"),
        ("Hugging Face.js is a set of JavaScript libraries for Hugging Face.", "Huggingface.js is a collection of JS libraries to interact with Hugging Face."),
        ("Diffusers are state-of-the-art diffusion models in PyTorch.", "PyTorch has cutting-edge diffusers for images and sound."),
        ("LOAD_HU is not a feature of v2.10.0.", "No, LOAD_HU doesn't exist in v2.10.0."),
        ("Explain recursion simply.", "Explain recursion simply."),
    ])
    func paraphrasesPass(query: String, candidate: String) {
        #expect(TrapGuard.check(query, candidate) == .ok)
    }

    @Test func asciiIsAnalysedAsTheUnicodePathAnalysesIt() {
        var generator = SplitMix64(seed: 29)
        let every = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["\r\n"]
        // Mostly what the analysis looks at: capitals, digits, inner dots, apostrophes and
        // underscores, sentence ends, negations.
        let telling: [String] = ["a", "Z", "q", "Q", "n't", "not", "'", "_", ".", "?", "!", " ", " ", "3", "07", "\r\n", ",", "x.y", "1.5", "-"]
        for length in [0, 1, 2, 7, 40, 300] {
            for round in 0..<200 {
                let text = round % 2 == 0
                    ? String((0..<length).map { _ in every[Int(generator.next() % UInt64(every.count))] })
                    : (0..<length).map { _ in telling[Int(generator.next() % UInt64(telling.count))] }.joined()
                let bytes = TrapGuard.Analysis(text, ascii: true), general = TrapGuard.Analysis(text, ascii: false)
                #expect(bytes.words == general.words, "\(Array(text.utf8))")
                #expect(bytes.numbers == general.numbers, "\(Array(text.utf8))")
                #expect(bytes.names == general.names, "\(Array(text.utf8))")
                #expect(bytes.negated == general.negated, "\(Array(text.utf8))")
                #expect(TrapGuard.Analysis.asciiTokens(text) == TrapGuard.Analysis.tokens(text), "\(Array(text.utf8))")
            }
        }
        // Non-ASCII text takes the general path.
        #expect(TrapGuard.Analysis("Ask Zoë about it").names == ["zoë"])
    }
}
