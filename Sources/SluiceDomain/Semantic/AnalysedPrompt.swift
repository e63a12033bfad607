/// A prompt as ``PromptVerifier`` reads it, each analysis made the first time it is needed and
/// kept: a lookup judges one query against up to ``SemanticNamespace/verified`` candidates, and
/// cutting and lemmatising the query once per candidate was a third of the verifier's time.
public struct AnalysedPrompt {
    public let text: String
    private var wordCount: Int?
    private var wordByWord: PromptTokens?
    private var basic: TrapGuard.Analysis?

    public init(_ text: String) {
        self.text = text
    }

    /// Whether the prompt is short enough to be cut and lemmatised at all (a 64 KiB prompt gets
    /// the basic checks only; see ``PromptVerifier/refusal(_:_:)``).
    mutating func fitsWordByWord() -> Bool {
        let limit = 3 * PromptVerifier.maxTokens
        if wordCount == nil { wordCount = PromptVerifier.words(in: text, atMost: limit) }
        return wordCount! <= limit
    }

    mutating func tokens(_ lexicon: Lexicon) -> PromptTokens {
        if let wordByWord { return wordByWord }
        let made = PromptTokens(text, lexicon: lexicon)
        wordByWord = made
        return made
    }

    /// What ``TrapGuard`` compares.
    mutating func basicAnalysis() -> TrapGuard.Analysis {
        if let basic { return basic }
        let made = TrapGuard.Analysis(text)
        basic = made
        return made
    }
}
