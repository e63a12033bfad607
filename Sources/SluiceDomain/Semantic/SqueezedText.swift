import CSluiceKernels

/// A prompt's lower-case letters and digits, run together ("Hugging Face.js" → "huggingfacejs"),
/// for "does this name occur at all". Searched as bytes with memmem (linear in the text):
/// `String.contains` compares grapheme by grapheme, and 60 made-up names searched for in a
/// 48 KB prompt held an event loop for 6.6 s.
struct SqueezedText {
    let bytes: [UInt8]

    init(_ text: String) {
        bytes = Array(String(text.lowercased().filter { $0.isLetter || $0.isNumber }).utf8)
    }

    func contains(_ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { n in
            guard n.count > 0 else { return true }
            guard n.count <= bytes.count else { return false }
            return bytes.withUnsafeBytes { sluice_contains_bytes($0.baseAddress, $0.count, n.baseAddress, n.count) != 0 }
        }
    }
}
