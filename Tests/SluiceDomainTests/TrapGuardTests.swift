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
}
