import CSluiceKernels

/// The approximate search of large indexes: inverted lists (``InvertedLists``) over int8 codes.
///
/// A partition is built in steps so that no lock is held for long and nothing large is copied:
/// ``beginPartition(lists:seed:)`` (write lock: copies a bounded sample, and from then on the
/// index records which ids change or move), ``ListBuilder/train()`` (no lock: k-means),
/// ``assign(_:into:)`` a range of rows at a time (read lock each: searches go on), and
/// ``finishPartition(_:)`` (write lock: the ids recorded meanwhile are brought up to date, then
/// the lists take over). A row assigned twice is harmless (an upsert); a row that moved into an
/// already-assigned range is among the recorded ids.
extension VectorIndex {
    /// Rows from which an index is worth partitioning — for vectors of 128 dimensions or more;
    /// smaller ones wait until the rows hold as many lanes (32,768 × 128 / the padded
    /// dimension rows: 262,144 of 8 dimensions). Below it an exact scan takes a few
    /// milliseconds at most; above it, the lists win more as the index grows.
    public static let listsFrom = 32_768
    /// Lists of an index: 512, or one per 64 rows when it has fewer than 32,768 (tests), and
    /// at most one per 40 sample rows.
    static let listsMost = 512
    /// Rows k-means learns from (a random sample of at most 64 MiB: 40 per list of 512), and
    /// its passes over them.
    static let trainingRows = 20_480
    static let trainingBytes = 64 << 20
    static let trainingIterations = 5
    /// Candidates the int8 scores propose for the exact re-rank.
    public static let reranked = 64

    /// Lists a search probes: one in 12, at least 8 (recall@1 of 0.95 at one in 16, 0.98 at
    /// one in 11, on 1,000,000 clustered vectors with near queries: benchmarks/RESULTS.md).
    public var listProbes: Int { lists.map { min($0.count, max(8, $0.count / 12)) } ?? 0 }

    public var isPartitioned: Bool { lists != nil }
    public var listCount: Int { lists?.count ?? 0 }

    /// Whether the index has grown to ``partitionFrom`` rows (and as many lanes as that many
    /// rows of 128 dimensions) without lists, and no partition is being built.
    public var wantsLists: Bool {
        lists == nil && changedSincePartition == nil && count >= partitionFrom && count &* stride >= partitionFrom &* 128
    }

    /// A partition in the making.
    public struct ListBuilder: Sendable {
        let sample: [Float]
        let sampleCount: Int
        let stride: Int
        let dimension: Int
        let listCount: Int
        let seed: UInt64
        var lists: InvertedLists?

        /// k-means on the sample: the costly part, to be run without the index's lock.
        public mutating func train() {
            guard lists == nil else { return }
            let centroids = InvertedLists.train(sample: sample, sampleCount: sampleCount, stride: stride, dimension: dimension,
                                                lists: listCount, iterations: VectorIndex.trainingIterations, seed: seed)
            lists = InvertedLists(centroids: centroids, stride: stride, dimension: dimension)
        }
    }

    /// Starts a partition with a copy of a random sample of the rows: nil when the index is
    /// empty or a partition is already being built. From now on the index records the ids that
    /// change or move, until ``finishPartition(_:)`` or ``abandonPartition()``.
    public mutating func beginPartition(lists: Int? = nil, seed: UInt64) -> ListBuilder? {
        guard count > 0, changedSincePartition == nil else { return nil }
        changedSincePartition = []
        var rng = SplitMix64(seed: seed)
        let n = min(count, Self.trainingRows, max(Self.trainingBytes / (stride * 4), 1))
        var picked = Array(0..<count)
        for i in 0..<n { picked.swapAt(i, i + Int(rng.next() % UInt64(count - i))) }
        var sample = [Float]()
        sample.reserveCapacity(n * stride)
        for r in picked.prefix(n) { sample.append(contentsOf: vectors[r * stride ..< (r + 1) * stride]) }
        let wanted = lists ?? min(Self.listsMost, InvertedLists.listCount(forRows: count), max(n / 40, 1))
        return ListBuilder(sample: sample, sampleCount: n, stride: stride, dimension: dimension, listCount: max(wanted, 1),
                           seed: rng.next(), lists: nil)
    }

    /// Puts the rows in `rows` (clamped to the index) into the builder's lists. One pass over
    /// the centroids per row: callers go a few thousand rows at a time under the read lock.
    public func assign(_ rows: Range<Int>, into builder: inout ListBuilder) {
        guard builder.lists != nil, builder.stride == stride else { return }
        let range = rows.clamped(to: 0..<count)
        vectors.withUnsafeBufferPointer { all in
            for r in range { place(row: r, of: all, into: &builder.lists!) }
        }
    }

    /// Puts row `r` into `lists` (or moves it there) with its code, tag and expiry as they are now.
    func place(row r: Int, of rows: UnsafeBufferPointer<Float>, into lists: inout InvertedLists) {
        let (code, scale) = Self.quantise(Array(rows[r * stride ..< (r + 1) * stride]))
        lists.upsert(ids[r], vector: rows.baseAddress! + r * stride,
                     InvertedLists.Entry(code: code, scale: scale, tag: tags[r], expiresAt: expiries[r]))
    }

    /// The ids recorded as changed so far, leaving the record empty (and still recording): the
    /// caller brings them up to date with ``catchUp(_:into:)`` under the read lock, so that the
    /// write lock of ``finishPartition(_:)`` has only the last few to do (under a stream of
    /// writes at 1,024 dimensions, doing them all there held the namespace for seconds).
    public mutating func takeChanges() -> Set<UInt64> {
        guard let changed = changedSincePartition else { return [] }
        changedSincePartition = []
        return changed
    }

    /// Brings the builder's lists up to date for `ids`: each in the list nearest its vector now,
    /// or gone.
    public func catchUp(_ ids: Set<UInt64>, into builder: inout ListBuilder) {
        guard builder.lists != nil, builder.stride == stride else { return }
        vectors.withUnsafeBufferPointer { rows in
            for id in ids {
                if let r = position[id] { place(row: r, of: rows, into: &builder.lists!) } else { builder.lists!.remove(id) }
            }
        }
    }

    /// Installs the builder's lists once every row has been assigned, after bringing the ids
    /// recorded since ``beginPartition(lists:seed:)`` up to date. false: no partition was begun,
    /// or the builder was not trained or is of another shape: nothing is installed.
    @discardableResult
    public mutating func finishPartition(_ builder: ListBuilder) -> Bool {
        guard let changed = changedSincePartition else { return false }
        changedSincePartition = nil
        guard builder.lists != nil, builder.lists!.stride == stride, builder.lists!.dimension == dimension else { return false }
        var builder = builder
        catchUp(changed, into: &builder)
        self.lists = builder.lists
        quantized = []
        return true
    }

    /// Forgets a partition begun and not to be finished.
    public mutating func abandonPartition() { changedSincePartition = nil }

    /// All the steps in one call (tests and benchmarks; the server takes locks between them).
    public mutating func buildLists(lists: Int? = nil, seed: UInt64 = 1) {
        guard var builder = beginPartition(lists: lists, seed: seed) else { return }
        builder.train()
        assign(0..<count, into: &builder)
        finishPartition(builder)
    }

    /// Approximate top `k` through the lists: the `probes` lists nearest `q` (normalised,
    /// `stride` lanes) are scored in int8, the best `candidates` entries tagged `tag` (any: nil)
    /// and not expired at `now` are re-ranked exactly. Fewer than `k` when the probed lists hold
    /// fewer such entries.
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
                    guard let i = position[m.id] else { continue }
                    top.offer(Match(id: m.id, score: Self.dot(qp.baseAddress!, rows.baseAddress! + i * stride, stride)))
                }
            }
        }
        return top.sorted()
    }

    /// ``searchLists`` over every tag (benchmarks and tests); without lists, the flat int8 scan.
    public func searchApproximate(_ query: [Float], k: Int, probes: Int? = nil, candidates: Int = VectorIndex.reranked) -> [Match] {
        guard query.count == dimension, k > 0, let q = Self.normalised(query, stride: stride) else { return [] }
        guard lists != nil else { return searchQuantised(query, k: k, candidates: candidates) }
        return searchLists(q, k: k, probes: probes ?? listProbes, candidates: candidates, tag: nil, now: 0)
    }
}
