import NIOCore

/// The option words a Sluice command has read. One given twice is `-ERR syntax error`
/// (PROTOCOL.md), as Redis refuses `SET k v EX 1 EX 2`, rather than the last one silently
/// winning: `CACHE.SET k v TOKENS 1 TOKENS 2` is more likely a client's bug than a wish.
/// Redis's own commands (SET, SCAN, HELLO, CLIENT) keep Redis's rules instead. Two names of one
/// option (RL.ACQUIRE's LEASE and TTL) are checked where they are read.
struct OptionWords {
    /// A word's first 16 bytes without case, and its length. Options are shorter; two longer
    /// words alike in their first 16 bytes are both unknown options, a syntax error either way.
    struct Word: Equatable {
        var head: UInt64, tail: UInt64, length: Int
    }

    /// No command takes more options than this; kept inline, so reading options allocates
    /// nothing, and made only at the first option (a request without options stores nothing).
    typealias Seen = InlineArray<12, Word>
    private var seen: Seen?
    private var count = 0

    /// Records `word`; throws `syntax error` when it was read before (or when more words than
    /// any command has options were given — each distinct one at most once, and an unknown
    /// word ends the command, so that is never a valid request).
    mutating func first(_ word: ByteBuffer) throws(CommandError) {
        let folded = word.withUnsafeReadableBytes { bytes -> Word in
            var parts: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &parts) { out in
                for i in 0..<min(bytes.count, 16) { out[i] = bytes[i] | 0x20 }
            }
            return Word(head: parts.0, tail: parts.1, length: bytes.count)
        }
        guard count < Seen.count else { throw CommandError.syntax }
        if seen == nil { seen = InlineArray(repeating: Word(head: 0, tail: 0, length: 0)) }
        for i in 0..<count where seen![i] == folded { throw CommandError.syntax }
        seen![count] = folded
        count += 1
    }
}
