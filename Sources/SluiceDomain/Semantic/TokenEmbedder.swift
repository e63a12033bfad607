import CSluiceResources
import Foundation

/// The built-in embedder: text → unit vector with no model to download and no network.
///
/// It splits text into lower-case words, drops a few stop words, cuts words into WordPiece
/// tokens (BERT's uncased vocabulary) and averages the tokens' rows of a table distilled from
/// all-MiniLM-L6-v2's input embeddings (see Resources/NOTICE.md and tools/make_token_table.py).
/// No transformer runs, so embedding costs microseconds; because the rows come from a model
/// trained on paraphrases, "cutting-edge" lands near "state-of-the-art", which a hashing
/// embedder cannot do. `version` is stored with every entry: vectors of different embedders are
/// never compared.
public final class TokenEmbedder: Sendable {
    public let version: String
    public let dimension: Int
    let vocabulary: [String: Int32]
    let pieces: WordPieceTrie
    let unknown: Int32
    /// rows × dimension int8 values, and one scale per row.
    let values: [Int8]
    let scales: [Float]

    static let stopWords: Set<String> = [
        "a", "an", "the", "is", "are", "was", "were", "be", "been", "of", "to", "in", "on", "for",
        "and", "or", "with", "as", "by", "at", "from", "that", "this", "these", "those", "it", "its", "into",
    ]

    static let stopWordBytes = Set(stopWords.map { Array($0.utf8) })
    static let longestStopWord = stopWords.map(\.utf8.count).max()!

    public enum LoadError: Error, CustomStringConvertible {
        case missing(String), malformed(String)
        public var description: String {
            switch self {
            case .missing(let s): return "embedder table missing: \(s)"
            case .malformed(let s): return "embedder table malformed: \(s)"
            }
        }
    }

    /// The table shipped with Sluice, compiled into the binary (CSluiceResources), so a
    /// `sluice` copied alone to another machine still has it.
    public static func builtIn() throws -> TokenEmbedder {
        var tableLength = 0, vocabLength = 0
        guard let table = sluice_tokens_table(&tableLength), let vocab = sluice_tokens_vocab(&vocabLength) else {
            throw LoadError.missing("tokens.table / tokens.vocab not compiled in")
        }
        return try TokenEmbedder(table: Data(bytes: table, count: tableLength),
                                 vocabulary: String(decoding: UnsafeBufferPointer(start: vocab, count: vocabLength), as: UTF8.self))
    }

    public init(table: Data, vocabulary text: String) throws {
        let bytes = [UInt8](table)
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        guard bytes.count >= 16, bytes[0..<4] == [0x53, 0x4C, 0x54, 0x54] else { throw LoadError.malformed("bad magic") }
        let version = u32(4), rows = u32(8), dims = u32(12)
        guard dims > 0, bytes.count == 16 + rows * (4 + dims) else { throw LoadError.malformed("size") }
        let words = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
        guard words.count == rows else { throw LoadError.malformed("vocabulary has \(words.count) lines, table \(rows) rows") }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(rows)
        for (i, w) in words.enumerated() { vocabulary[String(w)] = Int32(i) }
        var values = [Int8](repeating: 0, count: rows * dims)
        var scales = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let at = 16 + r * (4 + dims)
            scales[r] = Float(bitPattern: UInt32(u32(at)))
            for j in 0..<dims { values[r * dims + j] = Int8(bitPattern: bytes[at + 4 + j]) }
        }
        self.version = "minilm-tok\(dims)-v\(version)"
        self.dimension = dims
        self.vocabulary = vocabulary
        self.pieces = WordPieceTrie(vocabulary)
        self.unknown = vocabulary["[UNK]"] ?? 0
        self.values = values
        self.scales = scales
    }

    /// The unit vector of `text`; nil when it has no content words at all.
    public func embed(_ text: String) -> [Float]? {
        // The tokens first, then their rows summed in one pass, in the same order as always
        // (the vectors are stored: the same text must give the same bits).
        var ids: [Int32] = []
        var text = text
        let ascii = text.withUTF8 { bytes in
            // ASCII (most prompts) is cut and lower-cased byte by byte, without a String per
            // word: the same words, the same pieces, a fraction of the time.
            guard !bytes.contains(where: { $0 >= 0x80 }) else { return false }
            var word: [UInt8] = []
            word.reserveCapacity(64)
            func endWord() {
                defer { word.removeAll(keepingCapacity: true) }
                guard !word.isEmpty, !(word.count <= Self.longestStopWord && Self.stopWordBytes.contains(word)) else { return }
                let before = ids.count
                guard word.count <= 100, word.withUnsafeBufferPointer({ pieces.pieces($0, into: &ids) }) else {
                    ids.removeSubrange(before...)
                    return ids.append(unknown)
                }
            }
            for b in bytes {
                switch b {
                case 0x61...0x7A, 0x30...0x39: word.append(b)
                case 0x41...0x5A: word.append(b | 0x20)
                default: endWord()
                }
            }
            endWord()
            return true
        }
        if !ascii {
            for word in Self.words(text) where !Self.stopWords.contains(word) { ids += wordPieces(word) }
        }
        guard !ids.isEmpty else { return nil }
        var sum = [Float](repeating: 0, count: dimension)
        let dimension = dimension
        values.withUnsafeBufferPointer { rows in
            scales.withUnsafeBufferPointer { scales in
                sum.withUnsafeMutableBufferPointer { sum in
                    for t in ids {
                        let base = Int(t) * dimension, s = scales[Int(t)]
                        for j in 0..<dimension { sum[j] += Float(rows[base + j]) * s }
                    }
                }
            }
        }
        var norm: Float = 0
        for x in sum { norm += x * x }
        guard norm > 0 else { return nil }
        let inv = 1 / norm.squareRoot()
        return sum.map { $0 * inv }
    }

    /// Lower-case runs of letters and digits (punctuation separates words and is dropped).
    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        for ch in text.lowercased().unicodeScalars {
            if CharacterSet.alphanumerics.contains(ch) {
                current.unicodeScalars.append(ch)
            } else if !current.isEmpty {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Greedy longest-match WordPiece, as BERT does; an unmatched word, or one longer than 100
    /// characters, is [UNK]. Pieces end only between Characters: the trie walks bytes, and would
    /// otherwise end a piece inside one (a Hindi vowel sign, a decomposed Hangul syllable) where
    /// the lookup by String of BERT's reference algorithm never did — other pieces, other vectors
    /// than those stored (the tests compare the two).
    func wordPieces(_ word: String) -> [Int32] {
        var word = word
        let isASCII = ASCIIBytes.all(word.utf8)
        var boundaries: [Bool]?
        if !isASCII {
            guard word.count <= 100 else { return [unknown] }
            var marks = [Bool](repeating: false, count: word.utf8.count + 1)
            var offset = 0
            for character in word {
                marks[offset] = true
                offset += character.utf8.count
            }
            marks[offset] = true
            boundaries = marks
        } else if word.utf8.count > 100 {
            return [unknown]
        }
        return word.withUTF8 { bytes in
            var out: [Int32] = []
            return pieces.pieces(bytes, boundaries: boundaries, into: &out) ? out : [unknown]
        }
    }
}
