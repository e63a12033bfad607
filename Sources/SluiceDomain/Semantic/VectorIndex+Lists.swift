import CSluiceKernels

/// The approximate search of large indexes: inverted lists (``InvertedLists``) over the int8 rows.
///
/// Training is split so that the caller can run its costly part without a lock: copy a sample
/// (``listTraining(seed:)``, under the read lock), run k-means on it (``ListTraining/centroids()``,
/// no lock), then install the centroids (``installLists(_:)``, under the write lock), which
/// assigns every row to its list.
extension VectorIndex {
    /// Rows from which an index is worth partitioning (and lanes of vectors: 32,768 rows of
    /// 128 dimensions; an index of 8-dimension vectors waits for 524,288 rows). Below it an
    /// exact scan takes a few milliseconds at most; above it, the lists win more as it grows.
    public static let listsFrom = 32_768
    /// Lists of an index: 512, or one per 64 rows when it has fewer than 32,768 (tests).
    static let listsMost = 512
    /// Rows k-means learns from (a random sample), and its passes over them.
    static let trainingRows = 16_384
    static let trainingIterations = 5
    /// Candidates the int8 scores propose for the exact re-rank.
    public static let reranked = 64

    /// Lists a search probes: one in 12, at least 8 (recall@1 of 0.95 at one in 16, 0.98 at
    /// one in 11, on 1,000,000 clustered vectors with near queries: benchmarks/RESULTS.md).
    public var listProbes: Int { probes }
    var probes: Int { lists.map { min($0.count, max(8, $0.count / 12)) } ?? 0 }

    public var isPartitioned: Bool { lists != nil }
    public var listCount: Int { lists?.count ?? 0 }

    /// Whether the index has grown to ``partitionFrom`` rows (and as many lanes as that many
    /// rows of 128 dimensions) without lists.
    public var wantsLists: Bool { lists == nil && count >= partitionFrom && count &* stride >= partitionFrom &* 128 }

    /// What k-means needs, copied out of the index: a random sample of its rows.
    public struct ListTraining: Sendable {
        let sample: [Float]
        let sampleCount: Int
        let stride: Int
        let dimension: Int
        let lists: Int
        let seed: UInt64

        /// The centroids: the costly part (seconds at most), to be run without the index's lock.
        public func centroids() -> ListCentroids {
            ListCentroids(values: InvertedLists.train(sample: sample, sampleCount: sampleCount, stride: stride, dimension: dimension,
                                                      lists: lists, iterations: VectorIndex.trainingIterations, seed: seed),
                          stride: stride)
        }
    }

    public struct ListCentroids: Sendable {
        let values: [Float]
        let stride: Int
    }

    /// A sample of up to ``trainingRows`` rows (nil when the index is empty).
    public func listTraining(lists: Int? = nil, seed: UInt64) -> ListTraining? {
        guard count > 0 else { return nil }
        let n = min(count, Self.trainingRows)
        var rng = SplitMix64(seed: seed)
        var picked = Array(0..<count)
        for i in 0..<n { picked.swapAt(i, i + Int(rng.next() % UInt64(count - i))) }
        var sample = [Float]()
        sample.reserveCapacity(n * stride)
        for r in picked.prefix(n) { sample.append(contentsOf: vectors[r * stride ..< (r + 1) * stride]) }
        return ListTraining(sample: sample, sampleCount: n, stride: stride, dimension: dimension,
                            lists: lists ?? min(Self.listsMost, InvertedLists.listCount(forRows: count)), seed: rng.next())
    }

    /// Partitions the rows by `centroids` (each row to its nearest): `count × lists` dot
    /// products. The lists take the int8 codes; the flat copy is freed.
    /// false: centroids of another index shape (nothing changes).
    @discardableResult
    public mutating func installLists(_ centroids: ListCentroids) -> Bool {
        guard centroids.stride == stride, centroids.values.count >= stride, centroids.values.count % stride == 0 else { return false }
        var built = InvertedLists(centroids: centroids.values, stride: stride, dimension: dimension)
        vectors.withUnsafeBufferPointer { rows in
            for r in 0..<count {
                let code = lists == nil ? Array(quantized[r * stride ..< (r + 1) * stride])
                    : Self.quantise(Array(rows[r * stride ..< (r + 1) * stride])).0
                built.append(row: r, vector: rows.baseAddress! + r * stride,
                             InvertedLists.Row(code: code, scale: scales[r], tag: tags[r], expiresAt: expiries[r]))
            }
        }
        lists = built
        quantized = []
        return true
    }

    /// Trains and installs in one call (tests and benchmarks; the server splits it).
    public mutating func buildLists(lists: Int? = nil, seed: UInt64 = 1) {
        guard let training = listTraining(lists: lists, seed: seed) else { return }
        installLists(training.centroids())
    }

    /// Approximate top `k` through the lists: the `probes` lists nearest `q` (normalised,
    /// `stride` lanes) are scored in int8, the best `candidates` rows tagged `tag` (any: nil)
    /// and not expired at `now` are re-ranked exactly. Fewer than `k` when the probed lists hold
    /// fewer such rows.
    func searchLists(_ q: [Float], k: Int, probes: Int, candidates: Int, tag: UInt64?, now: Int64) -> [Match] {
        guard let lists else { return [] }
        let (qq, _) = Self.quantise(q)
        var rough = TopK(max(candidates, k))
        q.withUnsafeBufferPointer { qp in
            qq.withUnsafeBufferPointer { qqp in
                lists.probe(qp.baseAddress!, code: qqp.baseAddress!, probes: probes, tag: tag, now: now, into: &rough)
            }
        }
        var top = TopK(k)
        vectors.withUnsafeBufferPointer { rows in
            q.withUnsafeBufferPointer { qp in
                for m in rough.items {
                    let i = Int(m.id)
                    top.offer(Match(id: ids[i], score: Self.dot(qp.baseAddress!, rows.baseAddress! + i * stride, stride)))
                }
            }
        }
        return top.sorted()
    }

    /// ``searchLists`` over every tag (benchmarks and tests); without lists, the flat int8 scan.
    public func searchApproximate(_ query: [Float], k: Int, probes: Int? = nil, candidates: Int = VectorIndex.reranked) -> [Match] {
        guard query.count == dimension, k > 0, let q = Self.normalised(query, stride: stride) else { return [] }
        guard lists != nil else { return searchQuantised(query, k: k, candidates: candidates) }
        return searchLists(q, k: k, probes: probes ?? self.probes, candidates: candidates, tag: nil, now: 0)
    }
}
