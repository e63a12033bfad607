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

    /// BERT's reference algorithm, as the embedder ran it before the trie: every substring from
    /// the longest down, looked up as a String.
    func referenceWordPieces(_ word: String) -> [Int32] {
        let chars = Array(word)
        guard chars.count <= 100 else { return [embedder.unknown] }
        var pieces: [Int32] = []
        var start = 0
        while start < chars.count {
            var end = chars.count
            var found: Int32?
            while start < end {
                if let id = embedder.vocabulary[(start == 0 ? "" : "##") + String(chars[start..<end])] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [embedder.unknown] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    /// The embedding as the code before the trie computed it: the reference pieces, rows summed
    /// in token order. Stored vectors were made so; the same text must give the same bits.
    func referenceEmbed(_ text: String) -> [Float]? {
        var sum = [Float](repeating: 0, count: embedder.dimension)
        var tokens = 0
        for word in TokenEmbedder.words(text) where !TokenEmbedder.stopWords.contains(word) {
            for t in referenceWordPieces(word) {
                let base = Int(t) * embedder.dimension, s = embedder.scales[Int(t)]
                for j in 0..<embedder.dimension { sum[j] += Float(embedder.values[base + j]) * s }
                tokens += 1
            }
        }
        guard tokens > 0 else { return nil }
        var norm: Float = 0
        for x in sum { norm += x * x }
        guard norm > 0 else { return nil }
        let inv = 1 / norm.squareRoot()
        return sum.map { $0 * inv }
    }

    /// A seeded generator (SplitMix64): a failure is reproduced by running again.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Scripts where a piece could end inside a Character (vowel signs, decomposed syllables,
    /// combining marks), and others.
    static let nonLatin = ["भारत", "किताब", "पानी", "বাংলা", "한국어", "\u{1112}\u{1161}\u{11AB}\u{1100}\u{116E}\u{11A8}", "東京", "москва",
                           "ελληνικά", "e\u{301}te", "café", "naïve", "straße", "👍🏽ok", "ok👍", "ﬁne", "İstanbul", "ǅemal"]

    /// The trie cuts every word as the reference does: words of prompts, made-up words, digits,
    /// accented and non-Latin words, lengths around the 100-character bound.
    @Test func trieCutsAsTheReferenceDoes() {
        var rng = SeededGenerator(state: 10)
        var words = TokenEmbedder.words("""
            Transformers is a state-of-the-art machine learning library; unaffable playing reconfiguring \
            kubernetes postgresql 2024 3rd x86_64
            """) + Self.nonLatin
        words += [String(repeating: "x", count: 100), String(repeating: "ab", count: 50), String(repeating: "é", count: 100),
                  String(repeating: "é", count: 101), String(repeating: "कि", count: 100), String(repeating: "कि", count: 101), "##", "#"]
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789éकिাব한\u{301}")
        for _ in 0..<400 {
            let length = Int.random(in: 1...110, using: &rng)
            words.append(String((0..<length).map { _ in letters.randomElement(using: &rng)! }))
        }
        for word in words {
            #expect(embedder.wordPieces(word) == referenceWordPieces(word), "\(word)")
        }
    }

    /// The vectors are those the code before the trie made, bit for bit: ASCII (the byte path)
    /// and every other script (cut by words, then the trie with Character boundaries).
    @Test func vectorsAreTheStoredOnes() {
        var rng = SeededGenerator(state: 7)
        var texts = ["How do I reset my password?", "The OF and, TO!", "x86_64 kubernetes-1.29 (GKE) won't start",
                     String(repeating: "abcdefghij", count: 11) + " tail", "a", "", "  ", "2024-01-01T00:00Z",
                     "भारत की राजधानी क्या है?", "বাংলা ভাষা", "한국어 공부 방법", "Café naïve e\u{301}te 東京 москва 👍🏽"]
        texts += Self.nonLatin
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-_/()éकिাব한")
        for _ in 0..<200 {
            texts.append(String((0..<Int.random(in: 0...300, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
        }
        for text in texts {
            #expect(embedder.embed(text) == referenceEmbed(text), "\(text)")
        }
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
