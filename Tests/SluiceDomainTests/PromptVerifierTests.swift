import Testing
@testable import SluiceDomain

/// The WordNet verifier on examples written for these tests (one or more per category of the
/// development set); its measured precision and recall are in benchmarks/semantic.
@Suite("Prompt verifier (second stage of a semantic lookup)")
struct PromptVerifierTests {
    static let verifier = PromptVerifier.builtIn

    @Test(arguments: [
        ("How do I uninstall Docker on Ubuntu?", "How do I install Docker on Ubuntu?", "antonym"),
        ("How can I decrease my screen brightness?", "How can I increase my screen brightness?", "antonym"),
        ("Can I take ibuprofen with coffee?", "Can I take aspirin with coffee?", "sibling"),
        ("Convert Fahrenheit to Celsius", "Convert Celsius to Fahrenheit", "order"),
        ("Give me ten tips for better sleep", "Give me three tips for better sleep", "numbers"),
        ("Who was the second president of France?", "Who was the first president of France?", "numbers"),
        ("What is the most expensive city in Spain?", "What is the cheapest city in Spain?", "antonym"),
        ("Should I stretch after running?", "Should I stretch before running?", "antonym"),
        ("Explain photosynthesis to a chemist", "Explain photosynthesis to a toddler", "audience"),
        ("Where was the Eiffel Tower built?", "When was the Eiffel Tower built?", "question"),
        ("Which city hosted the 2012 Olympics?", "What year hosted the 2012 Olympics?", "question"),
        ("Can I give my dog tea?", "Can I give my dog coffee?", "sibling"),
        ("Why doesn't my laptop charge overnight?", "Why does my laptop charge overnight?", "negation"),
        ("What should I pack for a month in Rome?", "What should I pack for a week in Rome?", "time"),
        ("Is salmon high in mercury?", "Is tuna high in mercury?", "sibling"),
        // Longer than the word-by-word bound, but a one-word edit: judged all the same.
        ("Write a short blog post about index funds and bond ladders for experts with small savings",
         "Write a short blog post about index funds and bond ladders for beginners with small savings", "substitution"),
        // Who it is for, replaced whole after the same preposition.
        ("Explain quantum computing to a retired teacher", "Explain quantum computing to a high school student", "audience"),
        ("Gift ideas for a young child", "Gift ideas for a teenager", "audience"),
        // A condition one side adds.
        ("Can I drive on the highway if it snows?", "Can I drive on the highway?", "condition"),
        // A time for another time, with the words around it changed.
        ("Is it ok to leave cooked rice out for a week?", "Is it ok to leave cooked rice out overnight?", "time"),
        // Two things exchanged around the relation between them.
        ("Does anxiety cause insomnia?", "Does insomnia cause anxiety?", "order"),
        ("Is 4 a divisor of 12?", "Is 12 a divisor of 4?", "order"),
        // The action asked for, swapped (two ways of one more general action).
        ("How do I sell a used car online?", "How do I lease a used car online?", "substitution"),
        // A participle before a noun describes the thing: not an action swapped.
        ("How should I treat a twisted knee?", "How should I treat a dislocated knee?", "substitution"),
        // Decades are numbers.
        ("Fashion trends of the seventies", "Fashion trends of the nineties", "numbers"),
        // Every word in its place, the prepositions in front of them swapped.
        ("Trains to Lyon from Geneva", "Trains from Lyon to Geneva", "order"),
        // The voice changed, the order did not: who does what is swapped.
        ("Is anxiety caused by insomnia?", "Does anxiety cause insomnia?", "order"),
        // A participle describing a noun is not the passive voice.
        ("Are fresh vegetables healthier than frozen vegetables?", "Are frozen vegetables healthier than fresh vegetables?", "order"),
        // Verbs that are not close ways of one thing, in a request or a statement.
        ("This endpoint deletes a user", "This endpoint creates a user", "substitution"),
        ("Write a function that reverses a list", "Write a function that sorts a list", "substitution"),
        ("My landlord returns my deposit", "My landlord keeps my deposit", "substitution"),
        // An aside in the passive does not switch the order check off.
        ("My script is finished: is Java faster than Python?", "Is Python faster than Java?", "order"),
        // A plural is not a participle: the comparison keeps its order check.
        ("Are women taller than men?", "Are men taller than women?", "order"),
        // An event told in the past, and a gerund after a preposition: the action is the question.
        ("My dog ate a grape, what should I do?", "My dog sniffed a grape, what should I do?", "substitution"),
        ("Tips for selling a house in Spain", "Tips for renting a house in Spain", "substitution"),
    ])
    func trapsAreRefused(query: String, candidate: String, rule: String) throws {
        let verifier = try #require(Self.verifier, "the lexicon ships with the SluiceDomain bundle")
        let reason = verifier.refusal(query, candidate)
        #expect(reason?.hasPrefix(rule) == true, "\(query) / \(candidate): \(reason ?? "accepted")")
    }

    @Test(arguments: [
        ("What is the difference between HTTP and HTTPS?", "What is the difference between HTTPS and HTTP?"),
        ("How do I reset my router?", "How can I reset my router?"),
        ("Give me 3 ideas for a birthday party", "Give me three ideas for a birthday party"),
        ("Who wrote Hamlet?", "Hamlet was written by whom?"),
        ("What are the side effects of melatonin?", "What are melatonin's side effects?"),
        ("Is flying cheaper than driving to Berlin?", "Is flying less expensive than driving to Berlin?"),
        ("How do I repair a flat bicycle tyre?", "How do I fix a flat bicycle tyre?"),
        ("What year was the Eiffel Tower built?", "When was the Eiffel Tower built?"),
        ("Who designed the Eiffel Tower?", "The Eiffel Tower was designed by whom?"),
        // A verb saying what something does, for another (inflected, used as a verb): a rewording.
        ("The export function writes the report to disk", "The export function saves the report to disk"),
        ("The function returns the row count.", "The function provides the row count."),
        ("The function iterates over the rows.", "The function cycles through the rows."),
        // Adverbs, a teen and a teenager, now and currently, a decade in digits and in words.
        ("How do I correctly season a cast iron pan?", "How do I properly season a cast iron pan?"),
        ("How do I talk to teenagers about social media?", "How do I talk to teens about social media?"),
        ("Which phone has the best camera currently?", "Which phone has the best camera now?"),
        ("Music of the 80s", "Music of the eighties"),
        // Only the prepositions reordered with their words.
        ("Trains to Geneva from Lyon", "Trains from Lyon to Geneva"),
        // A verb for its direct hypernym or hyponym (eliminate is a way to remove).
        ("How do I remove stains from a carpet?", "How do I eliminate stains from a carpet?"),
        // Passive without "by", a participle after its noun, a noun said as its verb, a compound
        // said with "for": the same question in another order.
        ("You can find the setting in the Privacy tab.", "The setting can be found in the Privacy tab."),
        ("Click the provided link to continue.", "Click the link given to continue."),
        ("What is the origin of chess?", "Where did chess originate?"),
        ("Is Poetry a dependency management tool?", "Is Poetry a tool for managing dependencies?"),
        // Adjectives of one WordNet cluster.
        ("A simple way to learn Spanish verbs", "An easy way to learn Spanish verbs"),
    ])
    func paraphrasesPass(query: String, candidate: String) throws {
        let verifier = try #require(Self.verifier)
        #expect(verifier.refusal(query, candidate) == nil, "\(verifier.refusal(query, candidate) ?? "")")
    }

    @Test func longPassagesKeepTheBasicChecks() throws {
        let verifier = try #require(Self.verifier)
        let a = "The library provides tools to load datasets from the hub, process them with map and filter, and save them to disk in Arrow format."
        let b = "The library offers utilities to load datasets from the hub, transform them with map and filter, and store them on disk in Arrow format."
        #expect(verifier.refusal(a, b) == nil)
        // A one-word edit of a long prompt is judged word by word (a name, here).
        #expect(verifier.refusal(a.replacingOccurrences(of: "Arrow", with: "Parquet"), a) == "name Parquet")
    }

    @Test func blockSwapsAreFound() {
        #expect(PromptVerifier.isBlockSwap([0, 2, 1, 3]))
        #expect(PromptVerifier.isBlockSwap([2, 3, 0, 1]))
        #expect(!PromptVerifier.isBlockSwap([0, 1, 2, 3]))
        #expect(!PromptVerifier.isBlockSwap([3, 0, 2, 1]))
        // Around a fixed middle: A M B / B M A.
        #expect(PromptVerifier.isBlockSwap([0, 4, 3, 1, 2]))
        #expect(!PromptVerifier.isBlockSwap([0, 4, 3, 1, 2], aroundMiddle: false))
        #expect(PromptVerifier.isBlockSwap([2, 1, 0]) && !PromptVerifier.isBlockSwap([2, 1, 0], aroundMiddle: false))
    }

    @Test func siblingsShareAConcreteKindNotJustAnAbstractOne() throws {
        let lexicon = try #require(Self.verifier?.lexicon)
        #expect(lexicon.siblings("aspirin", "ibuprofen") && lexicon.siblings("coffee", "tea") && lexicon.siblings("salmon", "tuna"))
        // Near-synonyms WordNet files apart under an abstract ancestor.
        #expect(!lexicon.siblings("number", "quantity") && !lexicon.siblings("library", "package") && !lexicon.siblings("method", "function"))
    }

    @Test func longNamesAreLookedUpAsWordsNotSearchedFor() throws {
        let verifier = try #require(Self.verifier)
        // A made-up 64 KiB "name" once cost a substring search of length x length (40 s).
        let long = String(repeating: "Z", count: 65_000)
        #expect(verifier.refusal("Where is \(long)?", "Where is \(long)?") == nil)
        #expect(verifier.refusal("Where is \(long)Y?", "Where is \(long)?") != nil)
        let filler = String(repeating: "alpha beta gamma delta ", count: 20)
        #expect(TrapGuard.check(filler + "Z" + long, filler + "Z" + long) == .ok)
        #expect(TrapGuard.check(filler + "Z" + long + "Y", filler + "Z" + long) == .names)
    }

    @Test func shortNamesAreWholeWordsNotPiecesOfOne() throws {
        let verifier = try #require(Self.verifier)
        // "c" is in "calorie": searched as a piece of text, vitamin C was found there.
        #expect(verifier.refusal("What is the recommended daily intake of vitamin C?", "Recommended daily calorie intake for women") == "name C")
        #expect(verifier.refusal("What is the recommended daily intake of vitamin C?", "what is the recommended daily intake of vitamin C") == nil)
        // Whole words, or words run together: U.S. is US.
        #expect(verifier.refusal("How do I apply for a US visa?", "How do I apply for a U.S. visa?") == nil)
        #expect(verifier.refusal("How do I apply for a UK visa?", "How do I apply for a U.S. visa?") != nil)
    }

    @Test func synonymsAlignWhereTheWordsDiffer() throws {
        let verifier = try #require(Self.verifier)
        func aligned(_ a: String, _ b: String) -> Float? {
            var query = AnalysedPrompt(a)
            return verifier.alignment(&query, b)
        }
        // Every content word has a synonym on the other side (written for this test).
        let reworded = try #require(aligned("My car is very slow to start", "My automobile is really sluggish to start"))
        #expect(reworded == 1, "\(reworded)")
        // Half the words the same, the other half another subject: under the bar.
        let other = try #require(aligned("How do I bake sourdough bread at home?", "How do I bake chocolate cookies at home?"))
        #expect(other < SemanticNamespace.rewordingAlignment, "\(other)")
        // Prepositions and a leading "yes" are not content: they neither help nor hurt.
        #expect(aligned("Yes, it iterates through the rows", "It iterates the rows") == 1)
        #expect(aligned("the and of", "a question") == nil)
        // A passage is not aligned at all (matching is quadratic): only sentences.
        let words = (1...PromptVerifier.maxAlignedWords + 1).map { "word\($0)" }.joined(separator: " ")
        #expect(aligned(words, words) == nil)
        #expect(aligned("alpha beta", words) == nil)
        // A budget of word pairs: a candidate needing more than is left is not aligned, and costs nothing.
        var query = AnalysedPrompt("My car is very slow to start")
        var budget = 1_000
        #expect(verifier.alignment(&query, "My automobile is really sluggish to start", budget: &budget) == 1)
        let cost = 1_000 - budget  // every base form of 3 words × every base form of 3 words
        #expect(cost >= 9)
        budget = cost - 1
        #expect(verifier.alignment(&query, "My automobile is really sluggish to start", budget: &budget) == nil && budget == cost - 1)
        budget = cost
        #expect(verifier.alignment(&query, "My automobile is really sluggish to start", budget: &budget) == 1 && budget == 0)
        // Words whose base form is a particle ("downing": down) are not counted, but the judgement
        // of an aligned candidate compares them, with no budget of its own: they are charged here.
        // (An attack padded both prompts with 43 of them; each aligned candidate then cost 22–26
        // ms of an event loop.) Unbounded, the pair aligns: its three counted words match.
        let padded = "router modem cable" + String(repeating: " downing", count: 43)
        let candidate = "router modem cable" + String(repeating: " outer", count: 43)
        var paddedQuery = AnalysedPrompt(padded)
        #expect(verifier.alignment(&paddedQuery, candidate) == 1)
        budget = SemanticNamespace.alignmentBudget
        #expect(verifier.alignment(&paddedQuery, candidate, budget: &budget) == nil && budget == SemanticNamespace.alignmentBudget)
    }
}
