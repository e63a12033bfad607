import Testing
@testable import SluiceDomain

/// The lexicon's parser on small files written here (the built-in one is exercised by the
/// verifier's tests).
@Suite("Lexicon file")
struct LexiconTests {
    func parse(_ text: String) throws -> Lexicon {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { try Lexicon(bytes: $0) }
    }

    @Test func readsEveryRecordKind() throws {
        let lexicon = try parse("""
            s n-
            s n0
            s n0
            s a-
            w drink 1 n
            w beverage 1,2
            w tea 2
            w cheap 3
            a cheap expensive
            d drink drinker
            x drank drink

            """)
        #expect(lexicon.senses["beverage"] == [1, 2])
        #expect(lexicon.partOfSpeech(of: "drink") == "n")
        #expect(lexicon.partOfSpeech(of: "tea") == nil)
        #expect(Array(lexicon.links(1)) == [0])
        #expect(lexicon.links(0).isEmpty)
        #expect(lexicon.depth == [0, 1, 1, 0])
        #expect(lexicon.antonym("expensive", "cheap"))
        #expect(lexicon.derivations["drinker"] == ["drink"])
        #expect(lexicon.lemmas("drank") == ["drink"])
        #expect(lexicon.same("beverage", "drink"))
    }

    @Test func runsOfSpacesAreOneSeparator() throws {
        let lexicon = try parse("s n-\nw  tea   0 \n")
        #expect(lexicon.senses["tea"] == [0])
    }

    @Test(arguments: ["q what", "s", "s n- extra", "w tea", "w tea 0 n extra", "a cheap", "x drank", "ss n-"])
    func malformedLinesAreRefused(line: String) {
        #expect(throws: Lexicon.LoadError.self) { try parse("s n-\n" + line + "\n") }
    }
}
