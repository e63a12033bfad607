import Testing
@testable import SluiceDomain

@Suite("Built-in embedder")
struct TokenEmbedderTests {
    let embedder = try! TokenEmbedder.builtIn()

    func cosine(_ a: String, _ b: String) -> Float {
        zip(embedder.embed(a)!, embedder.embed(b)!).reduce(0) { $0 + $1.0 * $1.1 }
    }

    @Test func loadsTheShippedTable() {
        #expect(embedder.dimension == 128)
        #expect(embedder.version == "minilm-tok128-v1")
        let v = embedder.embed("How do I reset my password?")!
        #expect(v.count == 128)
        #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect(embedder.embed("How do I reset my password?") == v)  // deterministic
    }

    @Test func wordPieceMatchesBERT() {
        // Greedy longest-match-first on this vocabulary (checked against a reference
        // implementation of BERT's algorithm): una ##ffa ##ble; a whole-word token stays whole.
        #expect(embedder.wordPieces("unaffable") == ["una", "##ffa", "##ble"].map { embedder.vocabulary[$0] ?? -1 })
        #expect(embedder.wordPieces("playing") == [embedder.vocabulary["playing"] ?? -1])
        #expect(embedder.wordPieces(String(repeating: "x", count: 101)) == [embedder.unknown])
    }

    @Test func paraphrasesAreCloserThanUnrelatedText() {
        let a = "Transformers is a state-of-the-art machine learning library."
        #expect(cosine(a, "Transformers is a cutting-edge machine learning library.") > cosine(a, "Bake the cake for forty minutes at 180 degrees."))
        #expect(cosine("What is the capital of France?", "Which city is the capital of France?") > 0.8)
    }

    @Test func textWithoutContentWordsHasNoVector() {
        #expect(embedder.embed("") == nil)
        #expect(embedder.embed("the of and, to!") == nil)
    }
}
