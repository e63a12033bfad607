import NIOCore

/// The option words a Sluice command has read. One given twice is `-ERR syntax error`
/// (PROTOCOL.md), as Redis refuses `SET k v EX 1 EX 2`, rather than the last one silently
/// winning: `CACHE.SET k v TOKENS 1 TOKENS 2` is more likely a client's bug than a wish.
/// Redis's own commands (SET, SCAN, HELLO, CLIENT) keep Redis's rules instead.
struct OptionWords {
    /// Each word's first 16 bytes without case, and its length. Options are shorter; two longer
    /// words alike in their first 16 bytes are both unknown options, a syntax error either way.
    private var seen: [(UInt64, UInt64, Int)] = []

    /// Records `word`; throws `syntax error` when it was read before. At most one entry per
    /// option the command knows (an unknown word ends the command), so this stays small.
    mutating func first(_ word: ByteBuffer) throws(CommandError) {
        let folded = word.withUnsafeReadableBytes { bytes -> (UInt64, UInt64, Int) in
            var parts: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &parts) { out in
                for i in 0..<min(bytes.count, 16) { out[i] = bytes[i] | 0x20 }
            }
            return (parts.0, parts.1, bytes.count)
        }
        guard !seen.contains(where: { $0 == folded }) else { throw CommandError.syntax }
        seen.append(folded)
    }
}
