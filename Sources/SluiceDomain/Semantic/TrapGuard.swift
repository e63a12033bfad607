/// Refuses a semantic hit whose prompts differ in something a cosine cannot see.
///
/// Embeddings of "What is 15% of 200?" and "What is 20% of 200?", or of "Is X safe?" and
/// "Is X not safe?", are nearly identical, yet the answers differ. GPTCache's users report such
/// hits ("function of TV" answered with "function of money"). So, for the best candidate only:
/// - **numbers**: the sets of numbers (digit runs) must be equal;
/// - **negation**: both prompts say no (not, no, never, n't, without, absence, ...), or neither;
/// - **names and identifiers**: a word that looks like a name (capitalised, not first in its
///   sentence) or an identifier (has a digit, `_`, or an inner capital) in one prompt must occur
///   in the other, compared case-insensitively with spaces and punctuation squeezed out:
///   "Paris" vs "Rome" is a trap; "Diffusers ..." vs "... diffusers" and "Hugging Face.js" vs
///   "Huggingface.js" are not.
public enum TrapGuard {
    public enum Verdict: String, Sendable, Hashable {
        case ok, numbers, negation, names
    }

    public static func check(_ query: String, _ candidate: String) -> Verdict {
        check(Analysis(query), Analysis(candidate))
    }

    static func check(_ q: Analysis, _ c: Analysis) -> Verdict {
        if q.numbers != c.numbers { return .numbers }
        let differing = q.words.symmetricDifference(c.words)
        let union = q.words.union(c.words)
        guard differing.count <= max(4, union.count / 4) else { return .ok }  // a paraphrase, not an edit
        if q.negated != c.negated { return .negation }
        // At most 64 names each way: each is searched for in the whole other prompt, and a
        // 64 KiB prompt of made-up names must not cost seconds.
        let qNames = q.names.filter { differing.contains($0) || !c.words.contains($0) }.prefix(64)
        let cNames = c.names.filter { differing.contains($0) || !q.words.contains($0) }.prefix(64)
        if qNames.contains(where: { !c.contains(name: $0) }) || cNames.contains(where: { !q.contains(name: $0) }) {
            return .names
        }
        return .ok
    }

    /// Longest name searched for as a substring (see ``Analysis/contains(name:)``).
    public static let maxSearchedName = 64

    static let negations: Set<String> = ["not", "no", "never", "none", "nothing", "neither", "nor", "without", "cannot", "isnt",
                                         "arent", "wasnt", "werent", "dont", "doesnt", "didnt", "wont", "cant", "shouldnt", "couldnt",
                                         "absence", "absent", "lack", "lacks", "lacking", "missing", "hasnt", "havent"]

    struct Analysis {
        var numbers: Set<String> = []
        var words: Set<String> = []
        var names: Set<String> = []
        var negated = false
        /// Lower-case letters and digits only, for "does this name occur at all".
        var squeezed = SqueezedText("")

        init(_ text: String) {
            self.init(text, ascii: ASCIIBytes.all(text.utf8))
        }

        /// `ascii`: the text is ASCII (checked by the caller), so letters and digits are read
        /// from bytes: looking up `Character.isLetter` / `isNumber` per character was a third of
        /// a long prompt's lookup. Both paths give the same analysis of ASCII text
        /// (`TrapGuardTests`).
        init(_ text: String, ascii: Bool) {
            var sentenceStart = true
            var negations = 0
            for raw in ascii ? Self.asciiTokens(text) : Self.tokens(text) {
                if raw == "." || raw == "?" || raw == "!" {
                    sentenceStart = true
                    continue
                }
                let lower = raw.lowercased().removing("'")
                words.insert(lower)
                let hasDigit = ascii ? raw.utf8.contains(where: ASCIIBytes.isDigit) : raw.contains(where: \.isNumber)
                if hasDigit {
                    numbers.insert(ascii ? String(decoding: raw.utf8.filter { ASCIIBytes.isDigit($0) || $0 == UInt8(ascii: ".") }, as: UTF8.self)
                                         : String(raw.filter { $0.isNumber || $0 == "." }))
                }
                if TrapGuard.negations.contains(lower) || lower.hasSuffix("nt") && raw.hasSuffix("n't") { negations += 1 }
                let (capitalised, innerCapital) = PromptTokens.capitals(raw)
                if hasDigit || raw.contains("_") || innerCapital || (capitalised && !sentenceStart) {
                    names.insert(lower)
                }
                sentenceStart = false
            }
            // Said at all, not counted: "No, X doesn't exist" answers the same as "X is not there".
            negated = negations > 0
            squeezed = SqueezedText(text)
            names = Set(names.map { name in
                ascii ? String(decoding: name.utf8.filter(ASCIIBytes.isAlphanumeric), as: UTF8.self) : String(name.filter { $0.isLetter || $0.isNumber })
            }.filter { !$0.isEmpty })
        }

        /// ``tokens(_:)`` of ASCII text, from its bytes.
        static func asciiTokens(_ text: String) -> [String] {
            var out: [String] = []
            var text = text
            text.withUTF8 { bytes in
                var start = -1  // the current word's first byte, or -1
                for i in 0..<bytes.count {
                    let b = bytes[i]
                    let inner = (b == UInt8(ascii: ".") || b == UInt8(ascii: "'") || b == UInt8(ascii: "_")) && start >= 0
                        && i + 1 < bytes.count && ASCIIBytes.isAlphanumeric(bytes[i + 1])
                    if ASCIIBytes.isAlphanumeric(b) || inner {
                        if start < 0 { start = i }
                    } else {
                        if start >= 0 {
                            out.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
                            start = -1
                        }
                        if b == UInt8(ascii: ".") || b == UInt8(ascii: "?") || b == UInt8(ascii: "!") { out.append(String(UnicodeScalar(b))) }
                    }
                }
                if start >= 0 { out.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start...]), as: UTF8.self)) }
            }
            return out
        }

        /// Whether `name` occurs, spaces and punctuation squeezed out. A substring search costs
        /// length × length: a longer name must be one of the words (or names) instead.
        func contains(name: String) -> Bool {
            guard name.utf8.count <= TrapGuard.maxSearchedName else { return names.contains(name) || words.contains(name) }
            return squeezed.contains(name)
        }

        /// Words (letters, digits, apostrophes, inner dots/underscores) and sentence ends.
        static func tokens(_ text: String) -> [String] {
            var out: [String] = []
            var current = ""
            let chars = Array(text)
            for (i, ch) in chars.enumerated() {
                let inner = (ch == "." || ch == "'" || ch == "_") && !current.isEmpty && i + 1 < chars.count && (chars[i + 1].isLetter || chars[i + 1].isNumber)
                if ch.isLetter || ch.isNumber || inner {
                    current.append(ch)
                } else {
                    if !current.isEmpty { out.append(current); current = "" }
                    if ch == "." || ch == "?" || ch == "!" { out.append(String(ch)) }
                }
            }
            if !current.isEmpty { out.append(current) }
            return out
        }
    }
}
