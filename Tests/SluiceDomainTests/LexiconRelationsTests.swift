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
                             "unlock", "lock", "disable", "enable", "nonprofit", "profit", "misread", "antivirus", "virus"]
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

    @Test func sameAnswersAsTheReferenceForEveryPair() {
        let l = Self.lexicon, words = Self.words
        #expect(words.count > 300)
        var mismatches: [String] = [], agreedTrue = 0
        for a in words {
            for b in words {
                let fast = l.same(a, b), reference = l.referenceSame(a, b)
                if fast != reference { mismatches.append("\(a) / \(b): \(fast)") }
                if fast && a != b { agreedTrue += 1 }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        // The pairs exercise the relation, not only its absence.
        #expect(agreedTrue > 50)
    }

    @Test func antonymAnswersAsTheReferenceForEveryPair() {
        let l = Self.lexicon, words = Self.words
        var mismatches: [String] = [], agreedTrue = 0
        for a in words {
            for b in words {
                let fast = l.antonym(a, b), reference = l.referenceAntonym(a, b)
                if fast != reference { mismatches.append("\(a) / \(b): \(fast)") }
                if fast { agreedTrue += 1 }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20))")
        #expect(agreedTrue > 50)
    }

    @Test func knownPairsKeepTheirAnswers() {
        let l = Self.lexicon
        for (a, b) in [("install", "uninstall"), ("import", "export"), ("upgrade", "downgrade"), ("cheap", "expensive"),
                       ("acceptance", "rejection"), ("increase", "decrease")] {
            #expect(l.antonym(a, b) && l.antonym(b, a), "\(a) / \(b)")
            #expect(!l.same(a, b), "\(a) / \(b)")
        }
        for (a, b) in [("dad", "father"), ("eliminate", "remove"), ("e-mail", "email"), ("now", "currently")] {
            #expect(l.same(a, b), "\(a) / \(b)")
        }
        #expect(!l.same("read", "write") && !l.same("rent", "buy"))
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
        let verbs = { (w: String) in (self.senses[w] ?? []).filter { self.isPartOfSpeech($0, "v") }.prefix(7) }
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
        for p in Self.negatingPrefixes where min(a.count, b.count) > 2 && (a == p + b || b == p + a) { return true }
        for (p, q) in Self.pairedPrefixes {
            if a.hasPrefix(p), b.hasPrefix(q), a.dropFirst(p.count) == b.dropFirst(q.count), a.count > p.count + 2 { return true }
            if b.hasPrefix(p), a.hasPrefix(q), b.dropFirst(p.count) == a.dropFirst(q.count), b.count > p.count + 2 { return true }
        }
        let ha = referenceAdjectiveHeadWords(a), hb = referenceAdjectiveHeadWords(b)
        if !ha.isEmpty && !hb.isEmpty {
            for w in ha where !(antonyms[w] ?? []).isDisjoint(with: hb) { return true }
        }
        return false
    }

    func referenceAdjectiveHeadWords(_ word: String) -> Set<String> {
        var out = Set<String>()
        for x in (senses[word] ?? []).filter({ isPartOfSpeech($0, "a") }).prefix(2) {
            let heads = links(x).filter { isPartOfSpeech($0, "a") }
            for h in heads.isEmpty ? [x] : Array(heads) { out.formUnion(adjectiveWords[h] ?? []) }
        }
        return out
    }
}
