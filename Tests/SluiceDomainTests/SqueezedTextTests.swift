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
}
