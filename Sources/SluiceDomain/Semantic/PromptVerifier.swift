/// The second stage of a semantic lookup: does the best candidate ask the same thing as the
/// query? The cosine of averaged token vectors cannot see an action replaced by its opposite, a
/// thing by a sibling, a swap of who does what to whom, or a changed quantity; this looks at
/// what differs.
///
/// Short prompts (at most ``shortContentWords`` content words — questions, instructions) are
/// aligned word by word: words are lemmatised with WordNet (``Lexicon``), numbers (digits and
/// words, ordinals) normalised, and each word of one prompt matched to an equal or synonymous
/// word of the other. What is left unmatched is judged:
/// - different numbers, or negation on one side only → refused;
/// - a name or identifier in one prompt missing from the other → refused;
/// - an unmatched pair that are opposites (WordNet antonyms, negating or paired prefixes, closed
///   word pairs such as to/from, before/after) → refused, unless the other side says "less"
///   (cheaper = less expensive);
/// - question words asking for different kinds of answer (who, where, when, why; "what year"
///   reads as when, "which city" as where) → refused;
/// - an unmatched pair of nouns of the same concrete kind (a common hypernym close to both and
///   deep in the hierarchy) → refused;
/// - a time for another time (overnight / for a week), the words around it free to change;
/// - a small substitution (1–2 words for 1–2 words) in an otherwise aligned prompt → refused
///   (a thing, a quality, an action or a name swapped asks about something else; synonyms were
///   matched before, verbs also when one is the other's direct hypernym: remove / eliminate),
///   unless every word swapped is one paraphrasers swap freely (``paraphrasable``: adverbs, and
///   present-tense verbs saying what something does when the two are close in WordNet), only
///   when the swap is the whole edit (at most one more word edit): a rewording moves more
///   words than it swaps;
/// - the substitution rule only when the frame stayed: when more than two stop words changed
///   too ("X is not a feature of Y" / "No, X doesn't exist in Y"), a word for a word is a
///   rewording (a sibling swapped is refused all the same);
/// - the same words in another order → refused when a directional word (to, from, than, ...)
///   lies between the swapped words in both, or when two blocks were exchanged around a fixed
///   middle or none ("Can stress cause high blood pressure?" / "Can high blood pressure cause
///   stress?") with no symmetric connector (and, or, vs) between them; also when the words
///   keep their places but opposite prepositions stand in front of them ("from Boston to
///   Denver" / "to Boston from Denver"), or the voice changed and the order did not ("Does
///   stress cause X?" / "Is stress caused by X?"). Active/passive voice with the order
///   changed, and "X of Y" / "Y's X", are the same question.
/// When much differs (a rewording, not an edit) nothing is refused by the rules above. Two
/// rules look at larger edits and run before that bound: the object of the same preposition
/// (for, to, with) replaced whole at the end of an otherwise equal request (who it is for:
/// "to a child" / "to a software engineer", at most three content words each side), and a
/// condition one side adds (when, if, while, unless, during + content words). Longer
/// prompts — passages, documents — are judged so only when they differ by one word edit (a
/// trap's shape at any length); otherwise they keep the first-generation checks (``TrapGuard``:
/// numbers, negation, names).
public struct PromptVerifier: Sendable {
    public let lexicon: Lexicon
    /// Prompts with more content words than this are judged by ``TrapGuard`` only.
    public var shortContentWords = 7
    /// Candidates' analyses kept between lookups (shared by the copies of this verifier).
    let candidates = CandidateTokens()

    public init(lexicon: Lexicon) {
        self.lexicon = lexicon
    }

    /// The built-in verifier (nil when the lexicon is missing: then only ``TrapGuard`` runs).
    public static let builtIn: PromptVerifier? = Lexicon.builtIn.map { PromptVerifier(lexicon: $0) }

    /// Why `candidate` does not answer `query`, or nil when it does.
    public func refusal(_ query: String, _ candidate: String) -> String? {
        var analysed = AnalysedPrompt(query)
        return refusal(&analysed, candidate)
    }

    /// Why `candidate` does not answer `query`; `query`'s analyses are kept for the next
    /// candidate.
    /// `underTheBar`: the candidate scored under the bar and is judged as a rewording in
    /// synonyms. The cosine does not vouch for it, so every word-by-word rule applies however
    /// long the prompts and however much differs (a candidate over the bar is trusted past
    /// those bounds), and opposites count anywhere, not only in an edit of two words.
    public func refusal(_ query: inout AnalysedPrompt, _ candidate: String, underTheBar: Bool = false) -> String? {
        var other = AnalysedPrompt(candidate)
        func basicChecks() -> String? {
            let verdict = TrapGuard.check(query.basicAnalysis(), other.basicAnalysis())
            return verdict == .ok ? nil : verdict.rawValue
        }
        // Far more words than the word-by-word judgement takes: the basic checks, without
        // lemmatising a 64 KiB prompt first (every word looked up in the lexicon).
        guard query.fitsWordByWord(), other.fitsWordByWord() else { return basicChecks() }
        let q = query.tokens(lexicon), c = candidates.tokens(candidate) { other.tokens(lexicon) }
        let longest = max(q.contentCount, c.contentCount)
        // Word-by-word matching is quadratic: a prompt of thousands of commas or "and"s (few
        // content words, many tokens) gets the basic checks only.
        // Longer prompts too when they differ by an edit of a word or two: that is a trap's
        // shape whatever the length ("Write a 500-word post about X for beginners" / "... for
        // experts"), while a rewording of a longer prompt moves more.
        guard q.tokens.count <= Self.maxTokens, c.tokens.count <= Self.maxTokens,
              underTheBar || longest <= shortContentWords || editDistance(q, c) <= Self.minimalEdit else { return basicChecks() }
        if q.numbers.sorted() != c.numbers.sorted() {
            return "numbers \(Self.list(c.numbers))→\(Self.list(q.numbers))"
        }
        // What kind of answer is asked for: a time, a place, a person, a reason. "What year did
        // it sink?" and "Where did it sink?" ask different things; "When ..." and "What year ..."
        // the same.
        let kq = Self.answerKinds(q), kc = Self.answerKinds(c)
        if !kq.isEmpty && !kc.isEmpty && kq.isDisjoint(with: kc) {
            return "question \(kc.sorted().joined(separator: " "))→\(kq.sorted().joined(separator: " "))"
        }
        let qs = q.tokens.filter(Self.isJudged), cs = c.tokens.filter(Self.isJudged)
        let (matchOf, used) = match(qs, cs)
        var uq = qs.indices.filter { matchOf[$0] == nil }.map { qs[$0] }
        var uc = cs.indices.filter { !used[$0] }.map { cs[$0] }
        if let (x, y) = replacedObject(q, c, qs, cs, matchOf, used) {
            return "audience \(x)→\(y)"
        }
        if let added = addedCondition(q, c, uq, uc) { return "condition \(added)" }
        // A rewording, not an edit: too much differs for a word-by-word judgement.
        let differing = uq.count(where: { $0.kind == .content }) + uc.count(where: { $0.kind == .content })
        let reworded = differing > max(4, (q.contentCount + c.contentCount) / 4)
        if reworded && !underTheBar { return nil }
        if q.negated != c.negated { return "negation" }
        for t in uq where t.isName && !Self.occurs(t, of: q, in: c) { return "name \(t.base)" }
        for u in uc where u.isName && !Self.occurs(u, of: c, in: q) { return "name \(u.base)" }

        let lessQ = uq.contains(where: { Self.lessWords.contains($0.lemma) })
        let lessC = uc.contains(where: { Self.lessWords.contains($0.lemma) })
        var flipped = Set<Int>()
        // WordNet's antonyms of particles and prepositions (off / well) are noise: those go by
        // the closed table only. And an opposite in a rewording (several words moved: "keeps
        // disconnecting" / "a connection that keeps dropping", "X uses less than Y" / "Y needs
        // more than X") is not a flipped question.
        let edit = underTheBar || (uq.count(where: { $0.kind == .content }) <= 2 && uc.count(where: { $0.kind == .content }) <= 2)
        for t in uq where t.kind != .number {
            for u in uc where u.kind != .number && edit
                && (Self.opposite(t.lemma, u.lemma)
                    || (!Self.particles.contains(t.lemma) && !Self.particles.contains(u.lemma) && related(t, u, underTheBar ? lexicon.antonymOfASynonym : lexicon.antonym))) {
                if lessQ != lessC && !Self.isClosedOpposite(t.lemma) && !Self.isClosedOpposite(u.lemma) {
                    flipped.formUnion([t.position, -1 - u.position])  // cheaper = less expensive
                    continue
                }
                return "antonym \(u.base)→\(t.base)"
            }
        }
        uq.removeAll { flipped.contains($0.position) || Self.lessWords.contains($0.lemma) }
        uc.removeAll { flipped.contains(-1 - $0.position) || Self.lessWords.contains($0.lemma) }
        for t in uq where t.kind == .content {
            for u in uc where u.kind == .content && related(t, u, { lexicon.siblings($0, $1) }) {
                return "sibling \(u.base)→\(t.base)"
            }
        }
        let contentQ = uq.filter { $0.kind == .content }, contentC = uc.filter { $0.kind == .content }
        let matchedContent = qs.indices.count(where: { matchOf[$0] != nil && qs[$0].kind == .content })
        // A time for another time ("overnight" / "for a week", "in April" / "in October"): the
        // words around a time change with it ("in the morning" / "at night"), so neither the
        // frame nor the edit size says rewording here.
        if (1...2).contains(contentQ.count) && (1...2).contains(contentC.count) && matchedContent >= 1
            && contentQ.allSatisfy({ isTime($0) }) && contentC.allSatisfy({ isTime($0) })
            && !(contentQ.allSatisfy { Lexicon.presentTime.contains($0.lemma) } && contentC.allSatisfy { Lexicon.presentTime.contains($0.lemma) }) {
            return "time \(contentC.map(\.base).joined(separator: " "))→\(contentQ.map(\.base).joined(separator: " "))"
        }
        // A rewording changes the frame (the stop words around the content words) as well: "X is
        // not a feature of Y" / "No, X doesn't exist in Y". There a word for another word is a
        // paraphraser's choice; a trap keeps the frame and swaps the thing.
        if Self.frameChange(q, c) <= Self.maxFrameChange
            && (1...2).contains(contentQ.count) && (1...2).contains(contentC.count)
            && (matchedContent >= 2 || contentQ.count + contentC.count <= 2 || (matchedContent >= 1 && contentQ.count + contentC.count <= 3))
            && !(contentQ.allSatisfy { paraphrasable($0, in: q, for: contentC) } && contentC.allSatisfy { paraphrasable($0, in: c, for: contentQ) })
            && editDistance(q, c) <= max(contentQ.count, contentC.count) + Self.extraEdits {
            return "substitution \(contentC.map(\.base).joined(separator: " "))→\(contentQ.map(\.base).joined(separator: " "))"
        }
        return order(q, c, qs, cs, matchOf, pure: contentQ.isEmpty && contentC.isEmpty)
    }

    /// Each of `qs`' words matched to one of `cs`: equal lemmas first, then synonyms (content
    /// words only), left to right. `matchOf[i]`: the index in `cs` of `qs[i]`'s partner; `used[j]`:
    /// whether `cs[j]` has one.
    func match(_ qs: [PromptTokens.Token], _ cs: [PromptTokens.Token]) -> (matchOf: [Int?], used: [Bool]) {
        var matchOf = [Int?](repeating: nil, count: qs.count)
        var used = [Bool](repeating: false, count: cs.count)
        for (i, t) in qs.enumerated() {
            for (j, u) in cs.enumerated() where !used[j] && t.kind == u.kind && t.lemmas.contains(where: u.lemmas.contains) {
                matchOf[i] = j
                used[j] = true
                break
            }
        }
        for (i, t) in qs.enumerated() where matchOf[i] == nil && t.kind == .content {
            for (j, u) in cs.enumerated() where !used[j] && u.kind == .content && related(t, u, lexicon.same) {
                matchOf[i] = j
                used[j] = true
                break
            }
        }
        return (matchOf, used)
    }

    /// How much of two prompts says the same thing word for word: the share of their content
    /// words and numbers, both prompts together, that have an equal or synonymous partner in the
    /// other (Dice: 2 × pairs / all). Averaged token vectors rate a rewording made of synonyms
    /// ("a simple, safe way to store" / "an uncomplicated and secure method of keeping") well
    /// below one that repeats the words; this does not. nil: a prompt with no content word, or
    /// more than ``maxAlignedWords``.
    public func alignment(_ query: inout AnalysedPrompt, _ candidate: String) -> Float? {
        var unlimited = Int.max
        return alignment(&query, candidate, budget: &unlimited)
    }

    /// ``alignment(_:_:)``, spending at most `budget` pairs of base forms (all the query's words'
    /// base forms × all the candidate's): nil, and nothing spent, when it needs more than is left.
    public func alignment(_ query: inout AnalysedPrompt, _ candidate: String, budget: inout Int) -> Float? {
        // Counted from the bytes before anything is cut or looked up: a passage is no sentence.
        // (At most 48 pieces each: within what ``refusal(_:_:underTheBar:)`` judges word by word,
        // so a candidate aligned here never falls back to the basic checks there.)
        let most = 4 * Self.maxAlignedWords
        guard Self.words(in: query.text, atMost: most) <= most, Self.words(in: candidate, atMost: most) <= most else { return nil }
        // The candidate's analysis kept between lookups, as ``refusal(_:_:underTheBar:)`` keeps it: a
        // namespace's prompts are candidates again and again (it was a third of an aligned lookup).
        var other = AnalysedPrompt(candidate)
        let q = query.tokens(lexicon), c = candidates.tokens(candidate) { other.tokens(lexicon) }
        func counted(_ t: PromptTokens.Token) -> Bool {
            t.kind == .number || (t.kind == .content && !Self.particles.contains(t.lemma) && !Self.interjections.contains(t.lemma))
        }
        let qs = q.tokens.filter(counted), cs = c.tokens.filter(counted)
        // Matching is quadratic, and a synonym test looks through WordNet senses: a sentence,
        // not a passage (which is no rewording in synonyms the vectors missed, either).
        // The cost: every base form of one word tried against every base form of the other —
        // over every word the judgement of an aligned candidate then compares
        // (``refusal(_:_:underTheBar:)``: all but stop words and negations), not only the words
        // counted here. That judgement has no budget of its own, and words whose base form is a
        // particle ("downing": down) are not counted here but are compared there: 43 of them on
        // each side made one lookup 48 ms of an event loop (an attack, stop 37).
        func judged(_ p: PromptTokens) -> Int {
            p.tokens.reduce(0) { Self.isJudged($1) ? $0 + $1.lemmas.count : $0 }
        }
        let cost = judged(q) * judged(c)
        guard !qs.isEmpty, !cs.isEmpty, qs.count <= Self.maxAlignedWords, cs.count <= Self.maxAlignedWords, cost <= budget else { return nil }
        budget -= cost
        let pairs = match(qs, cs).matchOf.count { $0 != nil }
        return Float(2 * pairs) / Float(qs.count + cs.count)
    }

    /// Who or what a request is for, replaced whole: the same request up to the same
    /// preposition (for, to, with), then no content word in common ("Explain recursion to a
    /// child" / "... to a software engineer", "credit cards for students" / "... for small
    /// business owners"). The audience, recipient or purpose is the question. Returns the two
    /// objects (candidate's, query's).
    func replacedObject(_ q: PromptTokens, _ c: PromptTokens, _ qs: [PromptTokens.Token], _ cs: [PromptTokens.Token],
                        _ matchOf: [Int?], _ used: [Bool]) -> (String, String)? {
        func tail(_ p: PromptTokens, _ tokens: [PromptTokens.Token], matched: (Int) -> Bool) -> (preposition: String, words: [String])? {
            // The content words after the last matched one: at least one, at most three.
            guard let last = tokens.indices.last(where: { matched($0) && tokens[$0].kind == .content }) else { return nil }
            let rest = tokens[(last + 1)...].filter { $0.kind == .content }
            guard (1...Self.maxReplacedObject).contains(rest.count) else { return nil }
            // The word that opens the object: between the last shared word and the object
            // ("to a high school student": determiners and modifiers skipped).
            let between = p.tokens[(tokens[last].position + 1)..<rest[rest.startIndex].position]
            guard let opener = between.last(where: { Self.objectPrepositions.contains($0.lemma) }) else { return nil }
            return (opener.lemma, rest.map(\.base))
        }
        guard let tq = tail(q, qs, matched: { matchOf[$0] != nil }), let tc = tail(c, cs, matched: { used[$0] }),
              tq.preposition == tc.preposition else { return nil }
        // Every content word before the object matched: the rest of the request is the same.
        let beforeQ = qs.indices.filter { qs[$0].kind == .content && matchOf[$0] == nil }.count
        let beforeC = cs.indices.filter { cs[$0].kind == .content && !used[$0] }.count
        guard beforeQ == tq.words.count, beforeC == tc.words.count else { return nil }
        return (tc.words.joined(separator: " "), tq.words.joined(separator: " "))
    }

    /// A condition one prompt adds and the other has not ("What is the speed limit on French
    /// motorways?" / "... when it rains?"): every content word one prompt has beyond the other
    /// comes after a subordinating word (when, if, while, unless, during) the other lacks.
    func addedCondition(_ q: PromptTokens, _ c: PromptTokens, _ uq: [PromptTokens.Token], _ uc: [PromptTokens.Token]) -> String? {
        func added(in p: PromptTokens, _ extra: [PromptTokens.Token], other: PromptTokens) -> String? {
            guard let first = extra.filter({ $0.kind == .content && !Self.conditions.contains($0.lemma) }).map(\.position).min(),
                  let opener = p.tokens[..<first].last(where: { Self.conditions.contains($0.lemma) }), opener.position > 0,
                  !other.tokens.contains(where: { $0.lemma == opener.lemma }) else { return nil }
            return p.tokens[opener.position...].map(\.base).joined(separator: " ")
        }
        let extraQ = uq.filter { $0.kind == .content }, extraC = uc.filter { $0.kind == .content }
        if extraC.isEmpty { return added(in: q, extraQ, other: c) }
        if extraQ.isEmpty { return added(in: c, extraC, other: q) }
        return nil
    }

    static let conditions: Set<String> = ["when", "if", "while", "unless", "during", "whenever"]

    /// Prepositions that open whom or what a request is for.
    static let objectPrepositions: Set<String> = ["for", "to", "with"]
    /// Content words an object replaced whole may have on each side.
    static let maxReplacedObject = 3

    /// The kinds of answer a prompt's question words ask for (who, where, when, why), with
    /// "what year", "which city", "what reason" ... read as the question word they stand for.
    static func answerKinds(_ p: PromptTokens) -> Set<String> {
        var kinds = Set<String>()
        for (i, t) in p.tokens.enumerated() {
            if Self.questionWords.contains(t.lemma) { kinds.insert(t.lemma == "whom" ? "who" : t.lemma) }
            if (t.lemma == "what" || t.lemma == "which"), i + 1 < p.tokens.count, let kind = Self.kindNouns[p.tokens[i + 1].lemma] {
                kinds.insert(kind)
            }
        }
        return kinds
    }

    static let questionWords: Set<String> = ["who", "whom", "where", "when", "why"]
    static let kindNouns: [String: String] = [
        "year": "when", "date": "when", "time": "when", "day": "when", "month": "when", "century": "when",
        "place": "where", "city": "where", "country": "where", "location": "where", "town": "where",
        "reason": "why", "cause": "why", "person": "who", "people": "who",
    ]


    /// Same words, another order: see the type's comment.
    func order(_ q: PromptTokens, _ c: PromptTokens, _ qs: [PromptTokens.Token], _ cs: [PromptTokens.Token],
               _ matchOf: [Int?], pure: Bool) -> String? {
        let pairs = qs.indices.compactMap { i in matchOf[i].map { (i, $0) } }.filter { qs[$0.0].kind != .function }
        // Where each shared thing goes: "from Boston to Denver" / "to Boston from Denver" keeps
        // every word and its place but swaps the prepositions in front of them.
        for (i, j) in pairs {
            if let a = governor(q, qs[i].position), let b = governor(c, cs[j].position), Self.opposite(a, b) {
                return "order \(b) \(cs[j].base)→\(a) \(qs[i].base)"
            }
        }
        // Active / passive: the order is meant to change with the voice ("Who wrote Hamlet?" /
        // "Hamlet was written by whom?"). A passive counts when its verb is one the prompts
        // share ("can be found" / "can find"), not an aside ("my script is finished: ...").
        let matchedQ = Set(pairs.map { qs[$0.0].position }), matchedC = Set(pairs.map { cs[$0.1].position })
        let passiveQ = q.passiveParticiples.first(where: matchedQ.contains)
        let passiveC = c.passiveParticiples.first(where: matchedC.contains)
        if (passiveQ == nil) != (passiveC == nil) {
            // The voice changed but not the order, with the doer named after the verb: who does
            // what is swapped ("Does stress cause X?" / "Is stress caused by X?").
            let kept = pairs.count >= 2 && zip(pairs, pairs.dropFirst()).allSatisfy { $0.1 < $1.1 }
            let agent = passiveQ.map { q.hasAgent(after: $0) } ?? passiveC.map { c.hasAgent(after: $0) } ?? false
            if kept && agent, let first = pairs.first, let last = pairs.last {
                return "order \(qs[first.0].base)…\(qs[last.0].base) (voice)"
            }
            return nil
        }
        // Around a fixed middle ("A cause B" / "B cause A") only when the frame is the same:
        // "a package management system" / "a system for managing packages" is one thing said
        // two ways.
        let swapped = Self.isBlockSwap(pairs.map(\.1), aroundMiddle: Self.frameChange(q, c) == 0)
        for a in pairs.indices {
            for b in (a + 1)..<max(pairs.count, a + 1) where pairs[a].1 > pairs[b].1 {
                let (i1, j1) = pairs[a], (i2, j2) = pairs[b]
                // A noun said as its verb moves: "the origins of the Olympic Games" / "where did
                // the Olympic Games originate".
                if derived(qs[i1], cs[j1]) || derived(qs[i2], cs[j2]) { continue }
                // Each moved with its own preposition: "to Geneva from Lyon" / "from Lyon to Geneva".
                if let g1 = governor(q, qs[i1].position), governor(c, cs[j1].position) == g1,
                   let g2 = governor(q, qs[i2].position), governor(c, cs[j2].position) == g2 { continue }
                // A participle moved after its noun: "the provided link" / "the link given".
                if i2 == i1 + 1 && j1 == j2 + 1 && ((qs[i1].isParticiple && cs[j1].isParticiple) || (qs[i2].isParticiple && cs[j2].isParticiple)) {
                    continue
                }
                let betweenQ = qs[(i1 + 1)..<i2], betweenC = cs[(j2 + 1)..<j1]
                let lemmasQ = Set(betweenQ.map(\.lemma)), lemmasC = Set(betweenC.map(\.lemma))
                if !lemmasQ.isDisjoint(with: Self.symmetric) || !lemmasC.isDisjoint(with: Self.symmetric) { continue }
                // "side effects of metformin" / "metformin's side effects"
                if (q.hasOf(between: qs[i1].position, qs[i2].position) && cs[j2].possessive)
                    || (c.hasOf(between: cs[j2].position, cs[j1].position) && qs[i1].possessive) { continue }
                let x = qs[i1].base, y = qs[i2].base
                if !lemmasQ.isDisjoint(with: Self.directional) && !lemmasC.isDisjoint(with: Self.directional) { return "order \(x)…\(y)" }
                let contentBetween = max(betweenQ.count(where: { $0.kind == .content }), betweenC.count(where: { $0.kind == .content }))
                if pure && swapped && contentBetween <= 1 { return "order \(x)…\(y)" }
            }
        }
        return nil
    }

    /// Words a paraphraser swaps freely: adverbs (properly / correctly), and a verb saying what
    /// something does in the present ("the function loads / fetches a dataset", "iterates over /
    /// cycles through") when the two verbs are close ways of doing one thing in WordNet
    /// (``Lexicon/closeActions(_:_:distance:)``). The action a request asks for (the base
    /// form: "how do I read / write a CSV file"; a gerund: "tips for renting / buying a car") is
    /// the request itself, and so is an event told in the past ("my son swallowed / touched a
    /// coin"). `other` is the word it stands for in the other prompt. Not any verb for any
    /// verb even in statements: "the function returns / accepts a list", "this endpoint creates /
    /// deletes a user", "my landlord keeps / returns my deposit" say different things.
    func paraphrasable(_ t: PromptTokens.Token, in prompt: PromptTokens, for other: [PromptTokens.Token]) -> Bool {
        if Self.particles.contains(t.lemma) { return true }  // "cycles through"
        guard !t.isName else { return false }
        if t.lemmas.contains(where: { lexicon.partOfSpeech(of: $0) == "r" }) && !isTime(t) { return true }
        let word = t.base.lowercased()
        guard word != t.lemma, word.hasSuffix("s"), t.lemmas.contains(where: lexicon.canBeVerb) else { return false }
        // Mostly a verb, or used as one here: before a determiner ("loads a dataset") or a
        // preposition other than "of" ("cycles through files"; "causes of" is a noun's).
        // Also right after its subject, a pronoun or a noun ("It selects records", "The
        // `filter` method selects records").
        let next = t.position + 1 < prompt.tokens.count ? prompt.tokens[t.position + 1].lemma : ""
        let previous: PromptTokens.Token? = t.position > 0 ? prompt.tokens[t.position - 1] : nil
        let afterSubject = previous.map { Self.subjects.contains($0.lemma) || ($0.kind == .content && lexicon.partOfSpeech(of: $0.lemma) == "n") } ?? false
        let verbUse = t.lemmas.contains { lexicon.partOfSpeech(of: $0) == "v" }
            || Self.determiners.contains(next) || (Self.particles.contains(next) && next != "of") || afterSubject
        guard verbUse else { return false }
        return other.contains { u in
            Self.particles.contains(u.lemma) || t.lemmas.contains { a in u.lemmas.contains { b in lexicon.closeActions(a, b) } }
        }
    }

    static let subjects: Set<String> = ["it", "he", "she", "they", "this", "that", "which", "who"]

    /// Words that open a noun phrase (skipped before an object).
    static let determiners: Set<String> = ["a", "an", "the", "this", "that", "these", "those", "my", "your", "its", "their", "our", "his", "her", "all", "each", "every"]

    /// Word edits that make a minimal edit of a longer prompt (judged word by word).
    static let minimalEdit = 1

    /// Word edits beyond the substituted words that a substitution may come with and still be
    /// judged one: a trap is an edit of a word or two; a rewording moves more ("by clicking on
    /// the provided link" / "by following the link given").
    static let extraEdits = 1

    /// Word edits (insertions, deletions, substitutions) from one prompt to the other, words
    /// equal when they share a lemma; punctuation not counted. At most 64 tokens each (checked
    /// by the caller), so at most 4,225 cells.
    ///
    /// Each distinct lemma is numbered once, so a cell compares small integers: hashing the
    /// lemmas into a set per cell made this most of a long prompt's lookup.
    func editDistance(_ q: PromptTokens, _ c: PromptTokens) -> Int {
        let a = q.tokens.filter { $0.lemma.first?.isLetter == true || $0.kind == .number }
        let b = c.tokens.filter { $0.lemma.first?.isLetter == true || $0.kind == .number }
        var numbers: [String: Int] = [:]
        func number(_ lemma: String) -> Int {
            if let n = numbers[lemma] { return n }
            let n = numbers.count
            numbers[lemma] = n
            return n
        }
        let aLemma = a.map { number($0.lemma) }, aLemmas = a.map { $0.lemmas.map(number) }
        let bLemma = b.map { number($0.lemma) }, bLemmas = b.map { $0.lemmas.map(number) }
        var previous = Array(0...b.count), current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let same = aLemma[i - 1] == bLemma[j - 1] || Self.share(aLemmas[i - 1], bLemmas[j - 1])
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (same ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return a.isEmpty ? b.count : previous[b.count]
    }

    /// Whether two (short) lists of numbered lemmas have one in common.
    @inline(__always)
    static func share(_ x: [Int], _ y: [Int]) -> Bool {
        for u in x where y.contains(u) { return true }
        return false
    }

    /// The pieces ``PromptTokens`` would cut `text` into, counted from its bytes (at least as
    /// many): runs of ASCII letters and digits, and each `& / , . ? !`; anything else separates
    /// ("apple-apple-…" is as many words as "apple apple …"). Counting stops past `limit`.
    static func words(in text: String, atMost limit: Int) -> Int {
        var count = 0, inWord = false
        for b in text.utf8 {
            if ASCIIBytes.isAlphanumeric(b) {
                if !inWord { count += 1 }
                inWord = true
            } else {
                inWord = false
                if b == 0x26 || b == 0x2F || b == 0x2C || b == 0x2E || b == 0x3F || b == 0x21 { count += 1 }
            }
            if count > limit { return count }
        }
        return count
    }

    /// Whether name `t` occurs in prompt `p`, spaces and punctuation squeezed out ("Hugging
    /// Face" / "HuggingFace"). A substring search costs length × length: a name longer than
    /// ``TrapGuard/maxSearchedName`` must be one of `p`'s words instead (a 64 KiB made-up word
    /// searched in a 64 KiB prompt took 40 s).
    static func occurs(_ t: PromptTokens.Token, of source: PromptTokens, in p: PromptTokens) -> Bool {
        let name = t.squeezedBase
        guard name.utf8.count <= TrapGuard.maxSearchedName else { return p.tokens.contains { $0.squeezedBase == name } }
        // A name of one or two characters (vitamin C, the language R) is whole words, not a
        // piece of one ("c" is in "calorie"): a word, or words run together ("U.S." for US).
        guard name.utf8.count > Self.shortestSearchedName else {
            if spelled(name, in: p) { return true }
            // One letter of an abbreviation written with stops ("U" of "U.S."): the whole of it.
            guard t.position < source.tokens.count, source.tokens[t.position].squeezedBase == name else { return false }
            let piece = { (u: PromptTokens.Token) in u.squeezedBase.count == 1 || u.base == "." }
            var from = t.position, to = t.position
            while from > 0 && piece(source.tokens[from - 1]) { from -= 1 }
            while to + 1 < source.tokens.count && piece(source.tokens[to + 1]) { to += 1 }
            let whole = source.tokens[from...to].map(\.squeezedBase).joined()
            return whole.count > 1 && whole.count <= Self.shortestSearchedName * 2 && spelled(whole, in: p)
        }
        return p.squeezed.contains(name)
    }

    /// Whether consecutive words of `p` spell `name` exactly (stops between them ignored).
    static func spelled(_ name: String, in p: PromptTokens) -> Bool {
        for start in p.tokens.indices {
            var joined = ""
            for token in p.tokens[start...] {
                joined += token.squeezedBase
                if joined == name { return true }
                guard name.hasPrefix(joined) else { break }
            }
        }
        return false
    }

    /// Names this short are looked for as whole words (see ``occurs``).
    static let shortestSearchedName = 2

    /// Stop words one prompt has and the other has not (counted with repeats).
    static func frameChange(_ q: PromptTokens, _ c: PromptTokens) -> Int {
        var counts: [String: Int] = [:]
        for t in q.tokens where t.kind == .stop { counts[t.lemma, default: 0] += 1 }
        for t in c.tokens where t.kind == .stop { counts[t.lemma, default: 0] -= 1 }
        return counts.values.reduce(0) { $0 + abs($1) }
    }

    /// More stop words changed than this: a rewording (see ``frameChange``).
    static let maxFrameChange = 2

    /// At most eight items, for a reason a client reads.
    static func list(_ items: [String]) -> String {
        items.isEmpty ? "-" : items.prefix(8).joined(separator: " ") + (items.count > 8 ? " …" : "")
    }

    func related(_ t: PromptTokens.Token, _ u: PromptTokens.Token, _ relation: (String, String) -> Bool) -> Bool {
        for a in t.lemmas { for b in u.lemmas where relation(a, b) { return true } }
        return false
    }

    func isTime(_ t: PromptTokens.Token) -> Bool { !t.isName && t.lemmas.contains(where: lexicon.isTime) }

    /// The directional preposition in front of the noun phrase holding position `i` ("from" in
    /// "from New York"), or nil.
    /// Only over what can stand inside a noun phrase before its noun (determiners, adjectives,
    /// names, numbers), and never for a verb ("to load" is an infinitive, not a direction).
    func governor(_ p: PromptTokens, _ i: Int) -> String? {
        guard lexicon.partOfSpeech(of: p.tokens[i].lemma) != "v" else { return nil }
        var k = i - 1, steps = 0
        while k >= 0 && steps < 4 {
            let t = p.tokens[k]
            if Self.directional.contains(t.lemma) { return t.lemma }
            let modifier = Self.determiners.contains(t.lemma) || t.kind == .number
                || (t.kind == .content && (t.isName || lexicon.partOfSpeech(of: t.lemma) == "a"))
            guard modifier else { return nil }
            k -= 1
            steps += 1
        }
        return nil
    }

    /// Matched as derivations of each other (origin / originate), not as one word.
    func derived(_ t: PromptTokens.Token, _ u: PromptTokens.Token) -> Bool {
        Set(t.lemmas).isDisjoint(with: u.lemmas) && related(t, u) { lexicon.derivations[$0]?.contains($1) == true }
    }

    /// Whether `order` (positions in the other prompt) is increasing but for two blocks
    /// exchanged: `... A B ...` in one prompt, `... B A ...` in the other, or (`aroundMiddle`)
    /// `... A M B ...` and `... B M A ...`.
    static func isBlockSwap(_ order: [Int], aroundMiddle: Bool = true) -> Bool {
        let sorted = order.sorted()
        var rank: [Int: Int] = [:]
        for (i, v) in sorted.enumerated() { rank[v] = i }
        let r = order.map { rank[$0]! }
        var i = 0, j = r.count - 1
        while i < r.count && r[i] == i { i += 1 }
        while j >= 0 && r[j] == j { j -= 1 }
        guard i < j else { return false }
        // Blocks A (i..<k1), M (k1..<k2), B (k2...j) in one prompt are B M A in the other
        // (M empty: two blocks exchanged).
        let middle = Array(r[i...j])
        for k1 in (i + 1)...j {
            for k2 in k1...(aroundMiddle ? j : k1) {
                let lengthA = k1 - i, lengthM = k2 - k1, lengthB = j - k2 + 1
                let expected = Array((i + lengthB + lengthM)..<(i + lengthB + lengthM + lengthA))
                    + Array((i + lengthB)..<(i + lengthB + lengthM)) + Array(i..<(i + lengthB))
                if middle == expected { return true }
            }
        }
        return false
    }

    /// Tokens of a prompt the word-by-word judgement takes at most.
    static let maxTokens = 64
    /// Prepositions and particles: opposites among them only by ``closedOpposites``.
    static let particles: Set<String> = ["to", "from", "into", "onto", "toward", "towards", "before", "after", "above", "below", "over",
                                         "under", "up", "down", "in", "out", "on", "off", "with", "without", "within", "inside", "outside",
                                         "through", "across", "via", "around", "along", "upon"]
    /// The words ``refusal(_:_:underTheBar:)`` compares one by one (all but stop words and
    /// negations, which it judges whole) — and what ``alignment`` charges for.
    static func isJudged(_ t: PromptTokens.Token) -> Bool { t.kind != .stop && t.kind != .negation }

    /// Content words a prompt may have for ``alignment``.
    static let maxAlignedWords = 12

    /// Words that answer rather than say something ("Yes, X can ...").
    static let interjections: Set<String> = ["yes", "yeah", "ok", "okay", "sure", "indeed"]
    static let lessWords: Set<String> = ["less", "least", "fewer"]
    static let symmetric: Set<String> = ["and", "or", "vs", "versus", "between", ",", "&", "/", "times", "plus", "multiplied", "added"]
    static let directional: Set<String> = ["to", "from", "into", "than", "onto", "toward", "towards", "before", "after", "above", "below", "over", "under"]
    /// Closed-class opposites WordNet does not hold as antonyms of each other.
    static let closedOpposites: [String: Set<String>] = {
        let pairs = [("to", "from"), ("before", "after"), ("above", "below"), ("over", "under"), ("more", "less"), ("more", "fewer"),
                     ("most", "least"), ("up", "down"), ("in", "out"), ("on", "off"), ("into", "from"), ("min", "max"),
                     ("minimum", "maximum"), ("with", "without"), ("next", "previous"), ("next", "last"), ("within", "after"),
                     ("least", "exactly"), ("most", "exactly"), ("early", "late"), ("earlier", "later"), ("inside", "outside"),
                     ("higher", "lower"), ("high", "low")]
        var out: [String: Set<String>] = [:]
        for (a, b) in pairs {
            out[a, default: []].insert(b)
            out[b, default: []].insert(a)
        }
        return out
    }()

    static func opposite(_ a: String, _ b: String) -> Bool { closedOpposites[a]?.contains(b) == true }
    static func isClosedOpposite(_ a: String) -> Bool { closedOpposites[a] != nil }
}
