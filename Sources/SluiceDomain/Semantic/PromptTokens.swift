/// A prompt cut into words for ``PromptVerifier``: each word classed (content, function, number,
/// stop, negation) and lemmatised; numbers normalised from digits or words ("five hundred" →
/// 500, "fifty-five" → 55, "nineteen eighty" → 1980, "2k" → 2000, "third"/"3rd" → #3).
struct PromptTokens {
    enum Kind { case content, function, number, stop, negation }

    struct Token {
        var kind: Kind
        /// As written, without a possessive ("Swift's" → "Swift").
        var base: String
        /// The lemma compared (a number's value).
        var lemma: String
        /// Every base form the lexicon knows (tours → tour, tours).
        var lemmas: [String]
        /// A name or identifier: capitalised after a sentence's first word, or an inner capital.
        var isName = false
        var possessive = false
        /// Index in ``PromptTokens/tokens``.
        var position = 0
        /// Written as a verb's past form: "located", "given", "found" (set from the lexicon).
        var isParticiple = false
        /// Lower-case letters and digits of `base`.
        var squeezedBase: String { String(base.lowercased().filter { $0.isLetter || $0.isNumber }) }
    }

    private(set) var tokens: [Token] = []
    /// Lower-case letters and digits of the whole prompt ("does this name occur at all").
    let squeezed: SqueezedText

    var numbers: [String] { tokens.filter { $0.kind == .number }.map(\.lemma) }
    var contentCount: Int { tokens.count(where: { $0.kind == .content }) }
    var negated: Bool { tokens.contains { $0.kind == .negation } }
    /// Positions of participles after a form of "be", an adverb allowed between ("can be
    /// located", "are typically viewed", "was painted"): passive, if that verb is one the prompts
    /// share (not an aside: "my script is finished").
    private(set) var passiveParticiples: [Int] = []

    /// "... was painted by ...": a "by" after the passive verb at `position` (the doer named;
    /// "By default, X is ..." names none).
    func hasAgent(after position: Int) -> Bool {
        tokens[position...].contains { $0.lemma == "by" }
    }

    /// Whether an "of" lies between two token positions.
    func hasOf(between a: Int, _ b: Int) -> Bool {
        guard a < b else { return false }
        return tokens[a..<b].contains { $0.lemma == "of" }
    }

    init(_ text: String, lexicon: Lexicon) {
        squeezed = SqueezedText(text)
        var out: [Token] = []
        var sentenceStart = true
        // A number being read from words: the part done (thousands and up) and the current part.
        var done: Double = 0, current: Double = 0, reading = false

        func flush() {
            guard reading else { return }
            let value = Self.format(done + current)
            out.append(Token(kind: .number, base: value, lemma: value, lemmas: [value]))
            reading = false
            done = 0
            current = 0
        }

        for piece in Self.pieces(text) {
            let low = piece.lowercased()
            let plain = low.removing("'")
            if piece == "." || piece == "?" || piece == "!" {
                flush()
                sentenceStart = true
                continue
            }
            if piece == "," {
                flush()
                out.append(Token(kind: .function, base: ",", lemma: ",", lemmas: [","]))
                continue
            }
            if let value = Self.numberWords[plain] {
                if !reading {
                    reading = true
                    done = 0
                    current = 0
                }
                if value == 100 {
                    current = max(current, 1) * 100
                } else if value >= 1000 {
                    done += max(current, 1) * value
                    current = 0
                } else if value < 1 {
                    current = (current == 0 ? 1 : current) * value
                } else if current >= 100 && current.truncatingRemainder(dividingBy: 100) == 0 && value < 100 {
                    current += value  // five hundred and two
                } else if current >= 20 && current < 100 && current.truncatingRemainder(dividingBy: 10) == 0 && value < 10 {
                    current += value  // fifty-five
                } else if current >= 11 && current < 100 && value >= 10 {
                    current = current * 100 + value  // nineteen eighty: a year
                } else if current != 0 {
                    flush()
                    reading = true
                    current = value
                } else {
                    current = value
                }
                sentenceStart = false
                continue
            }
            if reading && plain == "and" { continue }
            flush()
            defer { sentenceStart = false }
            if low.hasSuffix("n't") {
                out.append(Token(kind: .stop, base: String(low.dropLast(3)), lemma: String(low.dropLast(3)), lemmas: []))
                out.append(Token(kind: .negation, base: "not", lemma: "not", lemmas: ["not"]))
                continue
            }
            if let apostrophe = low.firstIndex(of: "'"), Self.stopWords.contains(String(low[..<apostrophe])) {
                let word = String(low[..<apostrophe])
                out.append(Token(kind: .stop, base: word, lemma: word, lemmas: [word]))
                continue
            }
            if let first = piece.unicodeScalars.first, ("0"..."9").contains(first) {
                let value = Self.digitsValue(low)
                out.append(Token(kind: .number, base: piece, lemma: value, lemmas: [value]))
                continue
            }
            if let decade = Self.decades[plain] {
                out.append(Token(kind: .number, base: piece, lemma: decade, lemmas: [decade]))
                continue
            }
            if let n = Self.ordinals[plain] {
                out.append(Token(kind: .number, base: piece, lemma: "#\(n)", lemmas: ["#\(n)"]))
                continue
            }
            if Self.negations.contains(plain) {
                out.append(Token(kind: .negation, base: piece, lemma: "not", lemmas: ["not"]))
                continue
            }
            if PromptVerifier.isClosedOpposite(plain) || PromptVerifier.directional.contains(plain) || PromptVerifier.symmetric.contains(plain) {
                out.append(Token(kind: .function, base: piece, lemma: plain, lemmas: [plain]))
                continue
            }
            if Self.stopWords.contains(plain) {
                out.append(Token(kind: .stop, base: piece, lemma: plain, lemmas: [plain]))
                continue
            }
            let base = String(piece.split(separator: "'", omittingEmptySubsequences: false).first ?? Substring(piece))
            let word = base.lowercased()
            let lemmas = lexicon.lemmas(word)
            let (firstUpper, innerCapital) = Self.capitals(base)
            let capitalised = firstUpper && !sentenceStart
            var token = Token(kind: .content, base: base, lemma: lemmas[0], lemmas: lemmas,
                              isName: base != "I" && (capitalised || innerCapital), possessive: low.hasSuffix("'s"))
            // Not a noun's plural (men → man) nor a word that is mostly a noun (left, saw, lay).
            token.isParticiple = word != lemmas[0] && lexicon.canBeVerb(lemmas[0])
                && lexicon.partOfSpeech(of: word) != "n" && !word.hasSuffix("men")
                && (word.hasSuffix("ed") || word.hasSuffix("en") || word.hasSuffix("wn") || lexicon.irregular[word]?.contains(lemmas[0]) == true)
                && !word.hasSuffix("s") && !word.hasSuffix("ing")
            out.append(token)
        }
        flush()
        // "one" / "1" alone says no more than "a": not a quantity to compare.
        out.removeAll { $0.kind == .number && $0.lemma == "1" }
        for i in out.indices { out[i].position = i }
        tokens = out
        // The participle follows "be" within a few words: an adverb ("are typically viewed") or,
        // in a question, the subject ("Is anxiety caused by ...") may stand between.
        for i in out.indices where Self.beForms.contains(out[i].lemma) {
            for j in (i + 1)..<min(i + 5, out.count) {
                if out[j].isParticiple {
                    // Before a noun it describes the noun ("Are frozen vegetables ...?").
                    let modifies = j + 1 < out.count && out[j + 1].kind == .content && lexicon.partOfSpeech(of: out[j + 1].lemma) == "n"
                    if !modifies { passiveParticiples.append(j) }
                    break
                }
                let between = (out[j].kind == .content && (out[j].isName || out[j].lemmas.contains { lexicon.hasSense($0, "n", "a", "r") }))
                    || (out[j].kind == .stop && PromptVerifier.determiners.contains(out[j].lemma))
                if !between { break }
            }
        }
    }

    /// Runs of ASCII letters (with inner apostrophes), of digits (with inner `.` `,` and a unit
    /// or ordinal suffix, `%`), and the punctuation `& / , . ? !`; everything else separates.
    static func pieces(_ text: String) -> [String] {
        var out: [String] = []
        let scalars = Array(text.unicodeScalars.map { $0 == "\u{2019}" ? "'" : $0 })
        var i = 0
        func isLetter(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("A"..."Z").contains(s) }
        func isDigit(_ s: Unicode.Scalar) -> Bool { ("0"..."9").contains(s) }
        while i < scalars.count {
            let s = scalars[i]
            if isLetter(s) {
                var j = i
                while j < scalars.count && isLetter(scalars[j]) { j += 1 }
                if j + 1 < scalars.count && scalars[j] == "'" && isLetter(scalars[j + 1]) {
                    j += 1
                    while j < scalars.count && isLetter(scalars[j]) { j += 1 }
                }
                out.append(String(String.UnicodeScalarView(scalars[i..<j])))
                i = j
            } else if isDigit(s) {
                var j = i
                while j < scalars.count && (isDigit(scalars[j]) || ((scalars[j] == "." || scalars[j] == ",") && j + 1 < scalars.count && isDigit(scalars[j + 1]))) { j += 1 }
                // A fraction a/b is one number.
                if j + 1 < scalars.count && scalars[j] == "/" && isDigit(scalars[j + 1]) {
                    j += 1
                    while j < scalars.count && isDigit(scalars[j]) { j += 1 }
                }
                var k = j
                while k < scalars.count && isLetter(scalars[k]) && k - j < 2 { k += 1 }
                let suffix = String(String.UnicodeScalarView(scalars[j..<k])).lowercased()
                if ["st", "nd", "rd", "th", "k", "m", "bn", "s"].contains(suffix) && (k == scalars.count || !isLetter(scalars[k])) { j = k }
                if j < scalars.count && scalars[j] == "%" { j += 1 }
                out.append(String(String.UnicodeScalarView(scalars[i..<j])))
                i = j
            } else {
                if "&/,.?!".unicodeScalars.contains(s) { out.append(String(s)) }
                i += 1
            }
        }
        return out
    }

    /// "2,000" → "2000", "2k" → "2000", "3rd" → "#3", "1/4" → "0.25", "15%" → "15", "70s" and
    /// "1970s" as written (decades; "seventies" is "70s" too); a run of more than 15 digits as
    /// written (a Double would make two order numbers equal).
    static func digitsValue(_ low: String) -> String {
        var text = low.removing(",").removing("%")
        if text.utf8.count > 15 && text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return text }
        if text.hasSuffix("0s"), text.utf8.dropLast().allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            return text
        }
        var ordinal = false, multiplier: Double = 1
        for (suffix, m) in [("st", 0.0), ("nd", 0), ("rd", 0), ("th", 0), ("bn", 1e9), ("k", 1e3), ("m", 1e6)] where text.hasSuffix(suffix) {
            text.removeLast(suffix.count)
            if m == 0 { ordinal = true } else { multiplier = m }
            break
        }
        let value: String
        if let slash = text.firstIndex(of: "/"), let a = Double(text[..<slash]), let b = Double(text[text.index(after: slash)...]), b != 0 {
            value = format(a / b)
        } else if let d = Double(text) {
            value = format(d * multiplier)
        } else {
            value = text
        }
        return ordinal ? "#" + value : value
    }

    static func format(_ x: Double) -> String {
        if x.rounded() == x && abs(x) < 1e15 { return String(Int64(x)) }
        return String(x)
    }

    static let numberWords: [String: Double] = {
        var out: [String: Double] = [:]
        for (i, w) in "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split(separator: " ").enumerated() {
            out[String(w)] = Double(i)
        }
        for (w, v) in [("thirty", 30.0), ("forty", 40), ("fifty", 50), ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90),
                       ("hundred", 100), ("thousand", 1000), ("million", 1e6), ("billion", 1e9), ("dozen", 12), ("half", 0.5),
                       ("quarter", 0.25), ("twice", 2), ("once", 1), ("thrice", 3), ("double", 2), ("triple", 3), ("single", 1),
                       ("couple", 2), ("pair", 2)] {
            out[w] = v
        }
        return out
    }()

    static let ordinals: [String: Int] = {
        var out: [String: Int] = [:]
        for (i, w) in "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(separator: " ").enumerated() {
            out[String(w)] = i + 1
        }
        return out
    }()

    /// "in their twenties" → 20s (WordNet puts twenty and sixty in one adjective cluster).
    static let decades: [String: String] = [
        "twenties": "20s", "thirties": "30s", "forties": "40s", "fifties": "50s", "sixties": "60s",
        "seventies": "70s", "eighties": "80s", "nineties": "90s",
    ]

    static let negations: Set<String> = ["not", "no", "never", "none", "nothing", "neither", "nor", "without", "cannot", "isnt", "arent",
                                         "wasnt", "werent", "dont", "doesnt", "didnt", "wont", "cant", "shouldnt", "couldnt", "hasnt", "havent"]

    static let beForms: Set<String> = ["was", "were", "is", "are", "been", "be", "being"]

    /// Words that carry no content of their own here (the embedder drops some of them too).
    static let stopWords: Set<String> = Set("""
        a an the is are was were be been being am do does did doing done of and or as by at that this these those it its \
        i me my mine you your yours we us our he him his she her they them their what which who whom whose how why where when \
        can could would should will shall may might must please tell show give let know help explain want need like \
        some any there here about just also so very really get getting got way ways s for on in with from into
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))

    /// Whether `word`'s first character is upper-case, and whether any later one is. ASCII
    /// words (most) are read byte by byte: `Character.isUppercase` looked each character up
    /// in the Unicode property tables, on every word of every prompt the verifier (and
    /// ``TrapGuard``, for the basic checks) reads.
    static func capitals(_ word: String) -> (first: Bool, inner: Bool) {
        var word = word
        let ascii = word.withUTF8 { raw -> (Bool, Bool)? in
            var first = false, inner = false
            for (i, byte) in raw.enumerated() {
                if byte >= 0x80 { return nil }
                if ASCIIBytes.isUpper(byte) {
                    if i == 0 { first = true } else { inner = true }
                }
            }
            return (first, inner)
        }
        if let ascii { return ascii }
        return (word.first?.isUppercase == true, word.dropFirst().contains(where: \.isUppercase))
    }
}
