import CSluiceResources

/// WordNet 3.0 as the prompt verifier needs it: the senses of single-word lemmas, each synset's
/// hypernyms (nouns, verbs) and similar-to heads (adjectives), word-level antonyms and
/// derivations, and irregular forms. Compiled from Debian's `wordnet-base` by
/// `tools/make_lexicon.py` into `Resources/lexicon.txt` (format described there).
public final class Lexicon: Sendable {
    /// Per synset: part of speech (`n`, `v`, `a`, `r`), its links, its depth below a root.
    let partOfSpeech: [UInt8]
    let linkStart: [Int32]
    let linkData: [Int32]
    let depth: [Int16]
    let senses: [String: [Int32]]
    /// The part of speech a word mostly is (most senses tagged in WordNet's SemCor counts).
    let mainPartOfSpeech: [String: UInt8]
    let antonyms: [String: Set<String>]
    let derivations: [String: Set<String>]
    let irregular: [String: [String]]
    /// Adjective synset → its words (for antonyms between adjective clusters).
    let adjectiveWords: [Int32: [String]]
    /// "time period" and "time unit": the synsets above week's and hour's first noun senses.
    let timeRoots: Set<Int32>

    public enum LoadError: Error, CustomStringConvertible {
        case missing, malformed(String)
        public var description: String {
            switch self {
            case .missing: return "lexicon.txt not compiled in"
            case .malformed(let line): return "lexicon malformed near: \(line)"
            }
        }
    }

    /// The lexicon shipped with Sluice, compiled into the binary (CSluiceResources), parsed
    /// once (about 3.5 MB of text) straight from its bytes: splitting it as `String`s made every
    /// start-up take 0.8 s in a release build.
    public static let builtIn: Lexicon? = {
        var length = 0
        guard let bytes = sluice_lexicon(&length) else { return nil }
        return try? Lexicon(bytes: UnsafeBufferPointer(start: bytes, count: length))
    }()

    public init(bytes: UnsafeBufferPointer<UInt8>) throws {
        var pos: [UInt8] = [], starts: [Int32] = [], data: [Int32] = []
        var mainPOS: [String: UInt8] = [:]
        var senses: [String: [Int32]] = [:], antonyms: [String: Set<String>] = [:], derivations: [String: Set<String>] = [:]
        var irregular: [String: [String]] = [:]
        pos.reserveCapacity(120_000)
        starts.reserveCapacity(120_001)
        senses.reserveCapacity(90_000)
        var lines = LexiconLines(bytes)
        while var line = lines.next() {
            guard let kind = line.field() else { continue }
            guard kind.count == 1 else { throw LoadError.malformed(line.text) }
            switch bytes[kind.lowerBound] {
            case UInt8(ascii: "s"):
                guard let links = line.field(), line.isEmpty else { throw LoadError.malformed(line.text) }
                pos.append(bytes[links.lowerBound])
                starts.append(Int32(data.count))
                let ids = links.dropFirst()
                if !(ids.count == 1 && bytes[ids.lowerBound] == UInt8(ascii: "-")) && !ids.isEmpty {
                    data.append(contentsOf: line.integers(ids, invalid: 0))
                }
            case UInt8(ascii: "w"):
                guard let word = line.field(), let ids = line.field() else { throw LoadError.malformed(line.text) }
                let main = line.field()
                guard line.isEmpty else { throw LoadError.malformed(line.text) }
                let lemma = line.string(word)
                senses[lemma] = line.integers(ids, invalid: nil)
                if let main { mainPOS[lemma] = bytes[main.lowerBound] }
            case UInt8(ascii: "a"), UInt8(ascii: "d"), UInt8(ascii: "x"):
                guard let first = line.field(), let second = line.field(), line.isEmpty else { throw LoadError.malformed(line.text) }
                let a = line.string(first), b = line.string(second)
                switch bytes[kind.lowerBound] {
                case UInt8(ascii: "a"):
                    antonyms[a, default: []].insert(b)
                    antonyms[b, default: []].insert(a)
                case UInt8(ascii: "d"):
                    derivations[a, default: []].insert(b)
                    derivations[b, default: []].insert(a)
                default:
                    irregular[a, default: []].append(b)
                }
            default:
                throw LoadError.malformed(line.text)
            }
        }
        starts.append(Int32(data.count))
        partOfSpeech = pos
        linkStart = starts
        linkData = data
        self.senses = senses
        self.mainPartOfSpeech = mainPOS
        self.antonyms = antonyms
        self.derivations = derivations
        self.irregular = irregular
        var words: [Int32: [String]] = [:]
        for (word, ids) in senses {
            for id in ids where pos[Int(id)] == UInt8(ascii: "a") { words[id, default: []].append(word) }
        }
        adjectiveWords = words
        var roots = Set<Int32>()
        for word in ["week", "hour"] {
            guard let first = senses[word]?.first(where: { pos[Int($0)] == UInt8(ascii: "n") }) else { continue }
            roots.formUnion(data[Int(starts[Int(first)])..<Int(starts[Int(first) + 1])])
        }
        timeRoots = roots
        // Depth below a root along same-part-of-speech hypernyms (the graph is acyclic).
        var depth = [Int16](repeating: -1, count: pos.count)
        func compute(_ s: Int) -> Int16 {
            if depth[s] >= 0 { return depth[s] }
            depth[s] = 0  // guards against a cycle in a malformed file
            var best: Int16 = -1
            for i in Int(starts[s])..<Int(starts[s + 1]) {
                let p = Int(data[i])
                guard p < pos.count, pos[p] == pos[s], pos[s] != UInt8(ascii: "a") else { continue }
                let d = compute(p)
                if best < 0 || d < best { best = d }
            }
            depth[s] = best < 0 ? 0 : best + 1
            return depth[s]
        }
        for s in 0..<pos.count { _ = compute(s) }
        self.depth = depth
    }

    public func isKnown(_ word: String) -> Bool { senses[word] != nil }

    /// Whether `word` has a verb sense.
    func canBeVerb(_ word: String) -> Bool {
        senses[word]?.contains(where: { isPartOfSpeech($0, "v") }) == true
    }

    /// `n`, `v`, `a` or `r`: what `word` mostly is; nil when the lexicon does not know it.
    func partOfSpeech(of word: String) -> Character? {
        mainPartOfSpeech[word].map { Character(UnicodeScalar($0)) }
    }

    func links(_ s: Int32) -> ArraySlice<Int32> {
        linkData[Int(linkStart[Int(s)])..<Int(linkStart[Int(s) + 1])]
    }

    func isPartOfSpeech(_ s: Int32, _ p: PartOfSpeech) -> Bool { partOfSpeech[Int(s)] == p.code }

    /// `n`, `v`, `a` or `r` as the byte the synsets store: a literal, not a Character whose
    /// ASCII value is worked out from its Unicode scalars at every test (a tenth of an aligned
    /// lookup).
    struct PartOfSpeech: ExpressibleByUnicodeScalarLiteral {
        let code: UInt8
        init(unicodeScalarLiteral scalar: Unicode.Scalar) {
            precondition(scalar.isASCII, "a part of speech is one ASCII letter")
            code = UInt8(truncatingIfNeeded: scalar.value)
        }
    }

    /// A word for a stretch or point of time: a noun whose first two senses include one under
    /// WordNet's "time period" or "time unit" (found as the parents of week's and hour's first
    /// senses: month, night, morning, weekend, April, winter, minute), or a closed-class time
    /// adverb (today, overnight, daily).
    public func isTime(_ word: String) -> Bool {
        if Self.timeAdverbs.contains(word) || Self.presentTime.contains(word) { return true }
        // Mostly a noun, and its first noun sense a time: "term", "session", "fall" are not.
        guard mainPartOfSpeech[word] == UInt8(ascii: "n"),
              let first = senses[word]?.first(where: { isPartOfSpeech($0, "n") }) else { return false }
        return ancestors(first, 4).keys.contains(where: timeRoots.contains)
    }

    static let timeAdverbs: Set<String> = ["today", "tonight", "tomorrow", "yesterday", "overnight", "daily", "weekly", "monthly", "yearly",
                                           "annually", "hourly", "nightly", "later", "soon", "earlier", "recently"]
    /// One time said several ways ("now" / "currently"): the same time, not a time swapped.
    static let presentTime: Set<String> = ["now", "currently", "nowadays", "presently", "today"]

    /// `word`'s first `count` verb senses, most frequent first.
    func verbSenses(_ word: String, first count: Int) -> ArraySlice<Int32> {
        (senses[word] ?? []).filter { isPartOfSpeech($0, "v") }.prefix(count)
    }

    /// Two verbs that meet within `distance` hypernym steps (both counted) in their first six
    /// senses: close ways of doing one thing (return / provide, convert / transform, iterate /
    /// cycle: 2). WordNet's verb hierarchy is shallow: at 3–4 steps unrelated acts meet (keep /
    /// return 3, sort / reverse 4, return / accept 4, match / reject 4), so more is not close.
    func closeActions(_ a: String, _ b: String, distance: Int = 2) -> Bool {
        let ya = verbSenses(a, first: 6).map { ancestors($0, distance) }
        for y in verbSenses(b, first: 6) {
            let ancestorsOfY = ancestors(y, distance)
            for ax in ya {
                for (c, dy) in ancestorsOfY { if let dx = ax[c], dx + dy <= distance { return true } }
            }
        }
        return false
    }

    /// Base forms of `word`: its irregular lemmas, then forms by WordNet's suffix rules that
    /// the lexicon knows, with the word itself among them when it is known.
    func lemmas(_ word: String) -> [String] {
        var out = irregular[word] ?? []
        for (index, (suffix, replacement)) in Self.suffixRules.enumerated() where word.hasSuffix(suffix) && word.count > suffix.count + 1 {
            let base = String(word.dropLast(suffix.count)) + replacement
            guard isKnown(base) && !out.contains(base) else { continue }
            // Comparatives: only to an adjective or adverb, and not from a word that is only a
            // noun or a verb itself (teenager is not a form of teenage, computer not of compute).
            if index >= Self.firstComparativeRule && (!hasSense(base, "a", "r") || (isKnown(word) && !hasSense(word, "a", "r"))) { continue }
            out.append(base)
        }
        if isKnown(word) && !out.contains(word) { out.append(word) }
        return out.isEmpty ? [word] : out
    }

    func hasSense(_ word: String, _ kinds: PartOfSpeech...) -> Bool {
        senses[word]?.contains { s in kinds.contains { isPartOfSpeech(s, $0) } } == true
    }

    /// Where the adjective rules start in ``suffixRules``.
    static let firstComparativeRule = 14
    static let suffixRules: [(String, String)] = [
        ("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""),  // verbs
        ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),  // nouns
        ("er", ""), ("est", ""), ("er", "e"), ("est", "e"), ("ier", "y"), ("iest", "y"),  // adjectives
    ]

    /// Same meaning: equal, a shared synset, derivationally related, adjectives of one cluster
    /// (awful / bad), or one sense directly above the other among the first three (dad / father)
    /// — unless they are antonyms.
    ///
    /// The relation is looked for before the opposition: most pairs a verifier tries are
    /// neither, and the antonym test is the dearer of the two (derivations, prefixes, adjective
    /// clusters) — run first, it was 40% of an aligned lookup.
    func same(_ a: String, _ b: String) -> Bool {
        if a == b || Self.withoutHyphens(a) == Self.withoutHyphens(b) { return true }
        return related(a, b) && !antonym(a, b)
    }

    /// ``same(_:_:)`` before its antonym test.
    func related(_ a: String, _ b: String) -> Bool {
        if Self.presentTime.contains(a) && Self.presentTime.contains(b) { return true }
        if derivations[a]?.contains(b) == true { return true }
        guard let sa = senses[a], let sb = senses[b] else { return false }
        if Self.share(sa, sb) { return true }
        // Adjectives of one cluster (both similar to one head: "awful" and "bad").
        if hasAdjectiveSense(sa) && hasAdjectiveSense(sb) {
            let ha = adjectiveHeadWords(sa)
            if !ha.isEmpty && forEachAdjectiveHeadWord(sb, until: ha.contains) { return true }
        }
        for x in sa.prefix(3) {
            for y in sb.prefix(3) where partOfSpeech[Int(x)] == partOfSpeech[Int(y)] {
                if links(x).contains(y) || links(y).contains(x) { return true }
            }
        }
        // Verbs, in their first seven senses: one the other's direct hypernym (eliminate is a
        // way to remove, at eliminate's seventh). Two ways of one more general action (read /
        // write, rent / buy) are not the same; nor are rare senses (save / spend meet only at
        // save's ninth, charge / pay at charge's twelfth).
        // (Walked in place: a filtered copy of each word's senses per pair was a tenth of an
        // aligned lookup.)
        var verbsOfA = 0
        for x in sa where isPartOfSpeech(x, "v") {
            var verbsOfB = 0
            for y in sb where isPartOfSpeech(y, "v") {
                if links(x).contains(y) || links(y).contains(x) { return true }
                verbsOfB += 1
                if verbsOfB == 7 { break }
            }
            if verbsOfB == 0 { return false }
            verbsOfA += 1
            if verbsOfA == 7 { break }
        }
        return false
    }

    /// Opposites: WordNet antonyms (also through derivations: acceptance / rejection), a negating
    /// prefix (install / uninstall), paired prefixes (import / export, upgrade / downgrade), or
    /// adjectives whose cluster heads are antonyms (cheap ~ inexpensive / expensive).
    ///
    /// Written to build nothing for the common pair, which is no opposite: no set of derivations
    /// or adjective heads unless both words have some, no prefixed copy of a word to compare.
    func antonym(_ a: String, _ b: String) -> Bool {
        if antonyms[a]?.contains(b) == true { return true }
        // An antonym of `a` or of one of its derivations that is `b` or one of `b`'s.
        let derivationsOfB = derivations[b]
        func isBOrDerived(_ w: String) -> Bool { w == b || derivationsOfB?.contains(w) == true }
        if let opposites = antonyms[a], opposites.contains(where: isBOrDerived) { return true }
        if let derived = derivations[a] {
            for x in derived where x != a {
                if let opposites = antonyms[x], opposites.contains(where: isBOrDerived) { return true }
            }
        }
        if Self.negatedOrPaired(a, b) { return true }
        guard let sa = senses[a], let sb = senses[b], hasAdjectiveSense(sa), hasAdjectiveSense(sb) else { return false }
        let ha = adjectiveHeadWords(sa), hb = adjectiveHeadWords(sb)
        if !ha.isEmpty && !hb.isEmpty {
            for w in ha where !(antonyms[w] ?? []).isDisjoint(with: hb) { return true }
        }
        return false
    }

    /// A negating prefix (install / uninstall) or paired prefixes (import / export).
    static func negatedOrPaired(_ a: String, _ b: String) -> Bool {
        // ASCII words (nearly all) compared as bytes: the same answers as the String
        // comparisons below, which copy a prefixed word for every prefix.
        var a = a, b = b
        let bytewise: Bool? = a.withUTF8 { ua in
            b.withUTF8 { ub in
                ASCIIBytes.oneCharacterEach(ua) && ASCIIBytes.oneCharacterEach(ub) ? negatedOrPairedASCII(UnsafeRawBufferPointer(ua), UnsafeRawBufferPointer(ub)) : nil
            }
        }
        if let bytewise { return bytewise }
        for p in negatingPrefixes where min(a.count, b.count) > 2 && (a == p + b || b == p + a) { return true }
        for (p, q) in pairedPrefixes {
            if a.hasPrefix(p), b.hasPrefix(q), a.dropFirst(p.count) == b.dropFirst(q.count), a.count > p.count + 2 { return true }
            if b.hasPrefix(p), a.hasPrefix(q), b.dropFirst(p.count) == a.dropFirst(q.count), b.count > p.count + 2 { return true }
        }
        return false
    }

    static func negatedOrPairedASCII(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        func equal(_ x: UnsafeRawBufferPointer, from i: Int, _ y: UnsafeRawBufferPointer, from j: Int) -> Bool {
            x.count - i == y.count - j && (i ..< x.count).allSatisfy { x[$0] == y[$0 - i + j] }
        }
        func startsWith(_ x: UnsafeRawBufferPointer, _ p: [UInt8]) -> Bool {
            x.count >= p.count && p.indices.allSatisfy { x[$0] == p[$0] }
        }
        if min(a.count, b.count) > 2 {
            for p in negatingPrefixBytes {
                if startsWith(a, p) && equal(a, from: p.count, b, from: 0) { return true }
                if startsWith(b, p) && equal(b, from: p.count, a, from: 0) { return true }
            }
        }
        for (p, q) in pairedPrefixBytes {
            if startsWith(a, p), startsWith(b, q), equal(a, from: p.count, b, from: q.count), a.count > p.count + 2 { return true }
            if startsWith(b, p), startsWith(a, q), equal(b, from: p.count, a, from: q.count), b.count > p.count + 2 { return true }
        }
        return false
    }

    static let negatingPrefixBytes = negatingPrefixes.map { Array($0.utf8) }
    static let pairedPrefixBytes = pairedPrefixes.map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// `word` without its hyphens (e-mail / email); itself, not a copy, when it has none.
    static func withoutHyphens(_ word: String) -> String {
        // A hyphen is one byte in UTF-8 and never part of another character's bytes: without
        // that byte there is nothing to remove. With it, the Character-wise removal decides (a
        // hyphen with a combining mark on it is another character).
        word.utf8.contains(UInt8(ascii: "-")) ? word.removing("-") : word
    }

    /// Two sense lists with a sense in common (short lists compared pairwise, long ones by a set).
    static func share(_ x: [Int32], _ y: [Int32]) -> Bool {
        if x.count * y.count <= 64 { return x.contains(where: y.contains) }
        return !Set(x).isDisjoint(with: y)
    }

    func hasAdjectiveSense(_ senses: [Int32]) -> Bool {
        senses.contains { isPartOfSpeech($0, "a") }
    }

    /// ``antonym(_:_:)``, or one word a synonym of the other's antonym in their first three
    /// senses (increase / diminish: decrease is increase's antonym and shares a synset with
    /// diminish) — WordNet's indirect antonymy, for rewordings, where the opposite is said in
    /// other words.
    func antonymOfASynonym(_ a: String, _ b: String) -> Bool {
        if antonym(a, b) { return true }
        // The first three senses of each part of speech ("decrease" is a noun first).
        func leading(_ w: String) -> Set<Int32> {
            var kept = Set<Int32>(), perPart: [UInt8: Int] = [:]
            for sense in senses[w] ?? [] {
                let part = partOfSpeech[Int(sense)]
                if perPart[part, default: 0] < 3 { kept.insert(sense) }
                perPart[part, default: 0] += 1
            }
            return kept
        }
        func viaSynonym(_ x: String, _ y: String) -> Bool {
            guard let opposites = antonyms[x], senses[y] != nil else { return false }
            let near = leading(y)
            return opposites.contains { !near.isDisjoint(with: leading($0)) }
        }
        return viaSynonym(a, b) || viaSynonym(b, a)
    }

    static let negatingPrefixes = ["un", "dis", "de", "in", "im", "il", "ir", "non", "anti", "mis"]
    static let pairedPrefixes = [("up", "down"), ("in", "out"), ("im", "ex"), ("over", "under"), ("inter", "intra"), ("pre", "post"), ("en", "de")]

    /// The words of the heads of `word`'s first two adjective senses (a head is its own).
    func adjectiveHeadWords(_ word: String) -> Set<String> {
        adjectiveHeadWords(senses[word] ?? [])
    }

    func adjectiveHeadWords(_ senses: [Int32]) -> Set<String> {
        var out = Set<String>()
        _ = forEachAdjectiveHeadWord(senses) { word in
            out.insert(word)
            return false
        }
        return out
    }

    /// Calls `body` with each word of ``adjectiveHeadWords(_:)`` (a word may come more than
    /// once) until it returns true; whether it did.
    func forEachAdjectiveHeadWord(_ senses: [Int32], until body: (String) -> Bool) -> Bool {
        var taken = 0
        for x in senses where isPartOfSpeech(x, "a") {
            var headed = false
            for h in links(x) where isPartOfSpeech(h, "a") {
                headed = true
                for word in adjectiveWords[h] ?? [] where body(word) { return true }
            }
            if !headed {
                for word in adjectiveWords[x] ?? [] where body(word) { return true }
            }
            taken += 1
            if taken == 2 { break }
        }
        return false
    }

    /// Two nouns of the same kind: among their first three senses, a common hypernym within
    /// `distance` steps of each (neither being the other's), itself at least `minDepth` below
    /// the root. Things of one concrete kind share a deep ancestor (aspirin / ibuprofen: NSAID,
    /// 7; coffee / tea: 8; salmon / tuna: 11); near-synonyms that WordNet files apart share an
    /// abstract one (number / quantity: 5; library / package: 4; method / function: 5).
    func siblings(_ a: String, _ b: String, distance: Int = 3, minDepth: Int = 7) -> Bool {
        guard let sa = senses[a], let sb = senses[b] else { return false }
        for x in sa.prefix(3) where isPartOfSpeech(x, "n") {
            let ax = ancestors(x, distance)
            for y in sb.prefix(3) where isPartOfSpeech(y, "n") {
                for (c, dy) in ancestors(y, distance) {
                    guard let dx = ax[c], dx > 0, dy > 0, depth[Int(c)] >= minDepth else { continue }
                    return true
                }
            }
        }
        return false
    }

    func ancestors(_ s: Int32, _ distance: Int) -> [Int32: Int] {
        var out: [Int32: Int] = [s: 0]
        var frontier = [s]
        for d in 1...max(distance, 1) {
            var next: [Int32] = []
            for x in frontier {
                for p in links(x) where partOfSpeech[Int(p)] == partOfSpeech[Int(x)] && out[p] == nil {
                    out[p] = d
                    next.append(p)
                }
            }
            frontier = next
        }
        return out
    }
}
