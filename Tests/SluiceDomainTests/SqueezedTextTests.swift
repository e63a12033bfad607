import Testing
@testable import SluiceDomain

@Suite("Squeezed text (does a name occur at all)")
struct SqueezedTextTests {
    @Test func namesAreFoundWithSpacesAndPunctuationSqueezedOut() {
        let text = SqueezedText("Deploy it with Hugging Face.js on Node 20!")
        #expect(text.contains("huggingfacejs") && text.contains("node20") && text.contains(""))
        #expect(!text.contains("huggingfacepy") && !text.contains("deployitwithhuggingfacejsonnode20x"))
    }

    @Test func aNeedleLongerThanTheTextIsNotFound() {
        #expect(!SqueezedText("ab").contains("abc"))
        #expect(!SqueezedText("").contains("a"))
    }

    /// ASCII text is read byte by byte; every ASCII string gives what the Unicode path gives
    /// (all 128 characters, CR LF as one grapheme included), and other text takes that path.
    @Test func asciiIsReadAsTheUnicodePathReadsIt() {
        var generator = SplitMix64(seed: 17)
        let alphabet = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["\r\n"]
        for length in [0, 1, 2, 7, 40, 300] {
            for _ in 0..<200 {
                let text = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
                let general = Array(String(text.lowercased().filter { $0.isLetter || $0.isNumber }).utf8)
                #expect(SqueezedText.ascii(text) == general, "\(Array(text.utf8))")
                let capitals = PromptTokens.capitals(text)
                #expect(capitals.first == (text.first?.isUppercase == true), "\(Array(text.utf8))")
                #expect(capitals.inner == text.dropFirst().contains(where: \.isUppercase), "\(Array(text.utf8))")
            }
        }
        #expect(SqueezedText.ascii("Café 20") == nil)
        #expect(SqueezedText("Café 20").bytes == Array("café20".utf8))
        #expect(PromptTokens.capitals("Élan") == (true, false) && PromptTokens.capitals("iPhone") == (false, true))
        #expect(PromptTokens.capitals("mcÉlan") == (false, true) && PromptTokens.capitals("éa") == (false, false))
    }
}
