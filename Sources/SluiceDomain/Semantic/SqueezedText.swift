import CSluiceKernels

/// A prompt's lower-case letters and digits, run together ("Hugging Face.js" → "huggingfacejs"),
/// for "does this name occur at all". Searched as bytes with memmem (linear in the text):
/// `String.contains` compares grapheme by grapheme, and 60 made-up names searched for in a
/// 48 KB prompt held an event loop for 6.6 s.
struct SqueezedText {
    let bytes: [UInt8]

    init(_ text: String) {
        bytes = Self.ascii(text) ?? Array(String(text.lowercased().filter { $0.isLetter || $0.isNumber }).utf8)
    }

    /// The same bytes for ASCII text (most prompts), read byte by byte: `Character.isLetter`
    /// over graphemes looked each one up in the Unicode property tables — a tenth of a lookup
    /// the verifier judges, in `perf`. nil: not ASCII.
    static func ascii(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { raw -> [UInt8]? in
            // Checked first: pasted text often has one curly quote or dash, and then nothing
            // built here would be used.
            guard ASCIIBytes.all(raw) else { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(raw.count)
            for byte in raw where ASCIIBytes.isAlphanumeric(byte) {
                out.append(ASCIIBytes.isUpper(byte) ? byte | 0x20 : byte)
            }
            return out
        }
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
