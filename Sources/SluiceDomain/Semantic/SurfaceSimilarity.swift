/// How alike two prompts look on the surface: the Dice overlap of their character trigrams (case
/// and punctuation kept) and of their word bigrams (in order).
///
/// The cosine of averaged token vectors ranks near-duplicates almost at random: "The base class
/// is `GeneratorBasedBuilder`." and "The base class is GeneratorBasedBuilder." embed to the same
/// vector, and two stored rewordings of one sentence sit within 0.01 of each other. Among the
/// index's best candidates, the one that also *looks* like the query — the same spelling, the same
/// word sequences — is most often the one the query rewords. On GPTCache's benchmark this re-rank
/// of the top eight turns about 30 wrong hits into right ones (docs/SEMANTIC.md has the figures).
///
/// Each prompt counts at most ``maxBytes`` bytes, so a 64 KiB prompt costs what a 2 KiB one does.
public struct SurfaceSimilarity: Sendable {
    /// Sorted trigram codes (three bytes each) of the prompt's first `maxBytes` bytes, runs of
    /// white space read as one space.
    let trigrams: [UInt32]
    /// Sorted, de-duplicated hashes of adjacent lower-cased word pairs.
    let bigrams: [UInt64]

    public static let maxBytes = 2048
    /// Weights of the two overlaps added to the cosine when candidates are re-ranked.
    public static let trigramWeight: Float = 0.25
    public static let bigramWeight: Float = 0.1

    public init(_ text: String) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(text.utf8.count, Self.maxBytes))
        var lastWasSpace = false
        for b in text.utf8 {
            if bytes.count >= Self.maxBytes { break }
            let space = b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
            if space && lastWasSpace { continue }
            bytes.append(space ? 0x20 : b)
            lastWasSpace = space
        }
        var grams: [UInt32] = []
        if bytes.count >= 3 {
            grams.reserveCapacity(bytes.count - 2)
            for i in 0..<(bytes.count - 2) {
                grams.append(UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]))
            }
        }
        trigrams = grams.sorted()

        // Words: runs of ASCII letters and digits (lower-cased) or of non-ASCII bytes.
        var pairs: [UInt64] = []
        var previous: UInt64? = nil
        var current: UInt64 = 0xcbf2_9ce4_8422_2325
        var inWord = false
        func endWord() {
            if inWord {
                if let previous { pairs.append(previous &* 0x100_0000_01b3 ^ (current << 17 | current >> 47)) }
                previous = current
            }
            current = 0xcbf2_9ce4_8422_2325
            inWord = false
        }
        for b in bytes {
            let lower = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            let isWord = (lower >= 0x61 && lower <= 0x7A) || (lower >= 0x30 && lower <= 0x39) || lower >= 0x80
            if isWord {
                current = (current ^ UInt64(lower)) &* 0x100_0000_01b3
                inWord = true
            } else {
                endWord()
            }
        }
        endWord()
        pairs.sort()
        var unique: [UInt64] = []
        unique.reserveCapacity(pairs.count)
        for p in pairs where unique.last != p { unique.append(p) }
        bigrams = unique
    }

    /// Re-rank score of a candidate: its cosine plus the weighted overlaps.
    public func rerankScore(cosine: Float, _ other: SurfaceSimilarity) -> Float {
        cosine + Self.trigramWeight * Self.dice(trigrams, other.trigrams) + Self.bigramWeight * Self.dice(bigrams, other.bigrams)
    }

    /// 2·|A ∩ B| / (|A| + |B|) of two sorted multisets.
    static func dice<T: Comparable>(_ a: [T], _ b: [T]) -> Float {
        guard !a.isEmpty || !b.isEmpty else { return 0 }
        var i = 0, j = 0, common = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] {
                common += 1
                i += 1
                j += 1
            } else if a[i] < b[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return Float(2 * common) / Float(a.count + b.count)
    }
}
