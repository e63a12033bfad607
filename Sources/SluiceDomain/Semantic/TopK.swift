/// The k best matches seen so far (small k: a sorted insert beats a heap).
struct TopK {
    let k: Int
    var items: [VectorIndex.Match] = []

    init(_ k: Int) {
        self.k = k
        items.reserveCapacity(k + 1)
    }

    @inline(__always)
    mutating func offer(_ m: VectorIndex.Match) {
        if items.count == k {
            guard m.score > items[k - 1].score else { return }
            items.removeLast()
        }
        var i = items.count
        while i > 0 && items[i - 1].score < m.score { i -= 1 }
        items.insert(m, at: i)
    }

    func sorted() -> [VectorIndex.Match] { items }
}
