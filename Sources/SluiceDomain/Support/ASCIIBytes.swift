/// ASCII bytes classified as `Character`'s properties classify their characters: the byte paths
/// the verifier and the embedder take for ASCII text (most prompts), where looking each
/// character up in the Unicode property tables cost a large share of a lookup.
public enum ASCIIBytes {
    /// Whether every byte is ASCII (then each byte is one character).
    @inlinable
    public static func all<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        bytes.allSatisfy { $0 < 0x80 }
    }

    /// Whether every byte is ASCII and none is CR: then each byte is one `Character` (CR LF is
    /// one), and String comparisons, prefixes and counts are the bytes' own.
    @inlinable
    public static func oneCharacterEach<Bytes: Sequence>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        bytes.allSatisfy { $0 < 0x80 && $0 != 0x0D }
    }

    @inlinable
    public static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    @inlinable
    public static func isUpper(_ b: UInt8) -> Bool { b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") }

    @inlinable
    public static func isLower(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }

    /// A letter or a digit (`Character.isLetter || isNumber` for ASCII).
    @inlinable
    public static func isAlphanumeric(_ b: UInt8) -> Bool { isDigit(b) || isUpper(b) || isLower(b) }
}
