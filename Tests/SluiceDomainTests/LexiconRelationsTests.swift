import Testing
@testable import SluiceDomain

/// `Lexicon.same` and `Lexicon.antonym` were rewritten for speed (relation before opposition,
/// nothing built for the common pair, ASCII prefixes compared as bytes). Their answers decide
/// what the semantic cache serves, so they are compared here with the plain formulation they
/// replaced, kept below as the reference, over many pairs of words from the built-in lexicon.
@Suite("Lexicon relations against their reference")
struct LexiconRelationsTests {
    static let lexicon = Lexicon.builtIn!

    /// Words that reach every branch: antonyms and their derivations, negating and paired
    /// prefixes, adjective clusters, verbs, hyphens, present-time words, non-ASCII spellings
    /// (the Kelvin sign is canonically "K"), and a spread of the lexicon's own words.
    static let words: [String] = {
        let l = lexicon
        var out: [String] = ["now", "currently", "today", "e-mail", "email", "re-install", "reinstall", "install", "uninstall",
                             "import", "export", "upgrade", "downgrade", "overestimate", "underestimate", "preorder", "postorder",
                             "cheap", "expensive", "inexpensive", "poor", "bad", "good", "dad", "father", "eliminate", "remove",
                             "increase", "decrease", "diminish", "acceptance", "rejection", "accept", "reject", "save", "spend",
                             "read", "write", "rent", "buy", "fast", "slow", "quick", "rapid", "large", "big", "small",
                             "café", "cafe\u{301}", "\u{212A}ilo", "Kilo", "naïve", "über", "under", "über-cool", "a\r\nb", "-", "--",
                             "unlock", "lock", "disable", "enable", "nonprofit", "profit", "misread", "antivirus", "virus",
                             // Related and opposite at once (a shared synset, a negating prefix).
                             "flammable", "inflammable", "ravel", "unravel",
                             // Verbs with more than seven senses (the cut-off of the verb test).
                             "charge", "pay", "break", "get", "set"]
        for (i, word) in l.antonyms.keys.sorted().enumerated() where i % 80 == 0 {
            out.append(word)
            out.append(contentsOf: (l.antonyms[word] ?? []).sorted().prefix(2))
            out.append(contentsOf: (l.derivations[word] ?? []).sorted().prefix(1))
        }
        for (i, word) in l.senses.keys.sorted().enumerated() where i % 2500 == 0 {
            out.append(word)
            for p in ["un", "dis", "in", "up", "down", "over", "under"] { out.append(p + word) }
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }()

    /// `fast` against `reference` over every ordered pair of ``words``: the pairs they disagree
    /// on, and how many distinct pairs (one order, not a word with itself) `fast` holds for.
    static func compareOverEveryPair(_ fast: (String, String) -> Bool, _ reference: (String, String) -> Bool) -> (mismatches: [String], holds: Int) {
        var mismatches: [String] = [], holds = 0
        for a in words {
            for b in words {
                let answer = fast(a, b)
                if answer != reference(a, b) { mismatches.append("\(a) / \(b): \(answer)") }
                if answer && a < b { holds += 1 }
            }
        }
        return (mismatches, holds)
    }

    @Test func sameAnswersAsTheReferenceForEveryPair() {
        let l = Self.lexicon
        #expect(Self.words.count > 300)
        let (mismatches, holds) = Self.compareOverEveryPair(l.same, l.referenceSame)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        // The pairs exercise the relation, not only its absence.
        #expect(holds > 50)
    }

    @Test func antonymAnswersAsTheReferenceForEveryPair() {
        let l = Self.lexicon
        let (mismatches, holds) = Self.compareOverEveryPair(l.antonym, l.referenceAntonym)
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(holds > 50)
    }

    /// The prefix tests, bytewise for plain ASCII, against the String comparisons: every prefix
    /// on a spread of the lexicon's words, both ways and paired, and made-up edges — the length
    /// limits, a prefix in both lists, empty words, and text the bytes must leave to the Strings
    /// (the Kelvin sign is canonically "K"; CR LF is one Character).
    @Test func prefixTestsAnswerAsTheReference() {
        let l = Self.lexicon
        let edges: [(String, String)] = [("un\u{212A}ilo", "Kilo"), ("unnaïve", "naïve"), ("upcafé", "downcafé"), ("un\r\nb", "\r\nb"),
                                         ("upa\r\n", "downa\r\n"), ("unab", "ab"), ("unabc", "abc"), ("upab", "downab"), ("upabc", "downabc"),
                                         ("dexyz", "enxyz"), ("un", ""), ("", ""), ("in", "out"), ("inter", "intra"), ("interab", "intraab")]
        // Each pair with its kind: 0 an edge above, 1 a negating prefix, 2 paired prefixes.
        var pairs = edges.map { ($0.0, $0.1, 0) }
        for (i, word) in l.senses.keys.sorted().enumerated() where i % 23 == 0 {
            for p in Lexicon.negatingPrefixes { pairs += [(p + word, word, 1), (word, p + word, 1)] }
            for (p, q) in Lexicon.pairedPrefixes { pairs += [(p + word, q + word, 2), (q + word, p + word, 2)] }
        }
        var mismatches: [String] = [], found = [0, 0, 0]
        for (a, b, kind) in pairs {
            let fast = Lexicon.negatedOrPaired(a, b), reference = Lexicon.referenceNegatedOrPaired(a, b)
            if fast != reference { mismatches.append("\(a.debugDescription) / \(b.debugDescription): \(fast)") }
            if fast { found[kind] += 1 }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(found[1] > 1000 && found[2] > 1000)
        // The cases the bytes must not decide, answered as the Strings answer them.
        #expect(Lexicon.negatedOrPaired("un\u{212A}ilo", "Kilo"))
        #expect(!Lexicon.negatedOrPaired("un\r\nb", "\r\nb"))
    }

    @Test func adjectiveHeadsAnswerAsTheReferenceForEveryThirdWord() {
        let l = Self.lexicon
        var mismatches: [String] = [], nonEmpty = 0
        for (i, word) in l.senses.keys.sorted().enumerated() where i % 3 == 0 {
            let fast = l.adjectiveHeadWords(word)
            if fast != l.referenceAdjectiveHeadWords(word) { mismatches.append(word) }
            if !fast.isEmpty { nonEmpty += 1 }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(nonEmpty > 1000)
    }

    @Test func knownPairsKeepTheirAnswers() {
        let l = Self.lexicon
        for (a, b) in [("install", "uninstall"), ("import", "export"), ("upgrade", "downgrade"), ("cheap", "expensive"),
                       ("acceptance", "rejection"), ("increase", "decrease")] {
            #expect(l.antonym(a, b) && l.antonym(b, a), "\(a) / \(b)")
            #expect(!l.same(a, b), "\(a) / \(b)")
        }
        for (a, b) in [("awful", "bad"), ("dad", "father"), ("eliminate", "remove"), ("e-mail", "email"), ("now", "currently")] {
            #expect(l.same(a, b), "\(a) / \(b)")
        }
        #expect(!l.same("read", "write") && !l.same("rent", "buy"))
        // Related (one synset) and opposite (a negating prefix): opposition wins, as before.
        for (a, b) in [("flammable", "inflammable"), ("ravel", "unravel")] {
            #expect(l.related(a, b) && l.antonym(a, b) && !l.same(a, b), "\(a) / \(b)")
        }
    }
}

/// The formulation `same` and `antonym` had before they were made fast, word for word: the
/// oracle the tests above compare with.
extension Lexicon {
    func referenceSame(_ a: String, _ b: String) -> Bool {
        if a == b || a.removing("-") == b.removing("-") { return true }
        if referenceAntonym(a, b) { return false }
        if Self.presentTime.contains(a) && Self.presentTime.contains(b) { return true }
        if derivations[a]?.contains(b) == true { return true }
        guard let sa = senses[a], let sb = senses[b] else { return false }
        if !Set(sa).isDisjoint(with: sb) { return true }
        let ha = referenceAdjectiveHeadWords(a)
        if !ha.isEmpty && !ha.isDisjoint(with: referenceAdjectiveHeadWords(b)) { return true }
        for x in sa.prefix(3) {
            for y in sb.prefix(3) where partOfSpeech[Int(x)] == partOfSpeech[Int(y)] {
                if links(x).contains(y) || links(y).contains(x) { return true }
            }
        }
        let verbs = { (w: String) in (self.senses[w] ?? []).filter { self.partOfSpeech[Int($0)] == UInt8(ascii: "v") }.prefix(7) }
        for x in verbs(a) {
            for y in verbs(b) {
                if links(x).contains(y) || links(y).contains(x) { return true }
            }
        }
        return false
    }

    func referenceAntonym(_ a: String, _ b: String) -> Bool {
        if antonyms[a]?.contains(b) == true { return true }
        let da = (derivations[a] ?? []).union([a]), db = (derivations[b] ?? []).union([b])
        for x in da where !(antonyms[x] ?? []).isDisjoint(with: db) { return true }
        if Self.referenceNegatedOrPaired(a, b) { return true }
        let ha = referenceAdjectiveHeadWords(a), hb = referenceAdjectiveHeadWords(b)
        if !ha.isEmpty && !hb.isEmpty {
            for w in ha where !(antonyms[w] ?? []).isDisjoint(with: hb) { return true }
        }
        return false
    }

    static func referenceNegatedOrPaired(_ a: String, _ b: String) -> Bool {
        for p in negatingPrefixes where min(a.count, b.count) > 2 && (a == p + b || b == p + a) { return true }
        for (p, q) in pairedPrefixes {
            if a.hasPrefix(p), b.hasPrefix(q), a.dropFirst(p.count) == b.dropFirst(q.count), a.count > p.count + 2 { return true }
            if b.hasPrefix(p), a.hasPrefix(q), b.dropFirst(p.count) == a.dropFirst(q.count), b.count > p.count + 2 { return true }
        }
        return false
    }

    func referenceAdjectiveHeadWords(_ word: String) -> Set<String> {
        var out = Set<String>()
        // Parts of speech read as bytes here, not through the code under test.
        for x in (senses[word] ?? []).filter({ partOfSpeech[Int($0)] == UInt8(ascii: "a") }).prefix(2) {
            let heads = links(x).filter { partOfSpeech[Int($0)] == UInt8(ascii: "a") }
            for h in heads.isEmpty ? [x] : Array(heads) { out.formUnion(adjectiveWords[h] ?? []) }
        }
        return out
    }
}
