/// BERT's WordPiece vocabulary as two byte tries — pieces that start a word, and "##" pieces
/// that continue one — so that the longest piece at a position is found in one walk over the
/// word's bytes. Trying every substring from the longest down, as BERT's reference code does,
/// builds a String and hashes it per try: a 64 KiB prompt of 100-letter made-up words took 2.8 s
/// of an event loop that way.
///
/// The tries are flat arrays: a node's children are a sorted run of (byte, node) pairs; the
/// root's are a 256-entry table.
struct WordPieceTrie: Sendable {
    /// Per node: where its children start in ``childBytes``/``childNodes``, and how many.
    private var firstChild: [Int32] = []
    private var childCount: [UInt16] = []
    private var childBytes: [UInt8] = []
    private var childNodes: [Int32] = []
    /// Per node: the token id of the piece ending there, or -1.
    private var token: [Int32] = []
    /// Per root: the node reached by each first byte, or -1 (roots are nodes 0 and 1).
    private var rootTable: [[Int32]] = []

    /// `vocabulary`: piece → token id, "##" marking a continuation piece.
    init(_ vocabulary: [String: Int32]) {
        // Built as nested dictionaries, then flattened breadth-first.
        final class Node {
            var children: [UInt8: Node] = [:]
            var token: Int32 = -1
        }
        let roots = [Node(), Node()]
        for (piece, id) in vocabulary {
            var bytes = Array(piece.utf8)
            var root = roots[0]
            if bytes.count > 2 && bytes[0] == 0x23 && bytes[1] == 0x23 {
                bytes.removeFirst(2)
                root = roots[1]
            }
            guard !bytes.isEmpty else { continue }
            var node = root
            for b in bytes {
                if let next = node.children[b] {
                    node = next
                } else {
                    let next = Node()
                    node.children[b] = next
                    node = next
                }
            }
            node.token = id
        }
        // A node's number is its place in the queue: known when it is queued.
        var queue: [Node] = roots
        var at = 0
        while at < queue.count {
            let node = queue[at]
            at += 1
            token.append(node.token)
            firstChild.append(Int32(childBytes.count))
            childCount.append(UInt16(node.children.count))
            for (b, child) in node.children.sorted(by: { $0.key < $1.key }) {
                childBytes.append(b)
                childNodes.append(Int32(queue.count))
                queue.append(child)
            }
        }
        rootTable = [0, 1].map { root in
            var table = [Int32](repeating: -1, count: 256)
            let first = Int(firstChild[root])
            for k in 0..<Int(childCount[root]) { table[Int(childBytes[first + k])] = childNodes[first + k] }
            return table
        }
    }

    private func child(of node: Int32, _ byte: UInt8) -> Int32 {
        let first = Int(firstChild[Int(node)]), count = Int(childCount[Int(node)])
        var lo = first, hi = first + count
        while lo < hi {
            let mid = (lo + hi) / 2
            let b = childBytes[mid]
            if b == byte { return childNodes[mid] }
            if b < byte { lo = mid + 1 } else { hi = mid }
        }
        return -1
    }

    /// The word's pieces, greedy longest match from the left; false when some position matches
    /// no piece (the word is then unknown, as in BERT). `boundaries` (nil: every byte, ASCII):
    /// where pieces may end — the word's Character boundaries, so that a piece never ends
    /// inside a Character (a vowel sign after its consonant), as a lookup by String never did.
    func pieces(_ word: UnsafeBufferPointer<UInt8>, boundaries: [Bool]? = nil, into out: inout [Int32]) -> Bool {
        var start = 0
        while start < word.count {
            var node = rootTable[start == 0 ? 0 : 1][Int(word[start])]
            var best: (id: Int32, end: Int)?
            var i = start + 1
            while node >= 0 {
                let id = token[Int(node)]
                if id >= 0 && boundaries?[i] != false { best = (id, i) }
                guard i < word.count else { break }
                node = child(of: node, word[i])
                i += 1
            }
            guard let best else { return false }
            out.append(best.id)
            start = best.end
        }
        return true
    }
}
