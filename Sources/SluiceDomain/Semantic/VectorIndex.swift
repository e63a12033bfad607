import CSluiceKernels

/// Vectors of one dimension in contiguous storage, searched by cosine similarity.
///
/// Vectors are stored normalised, so cosine is a dot product: an exact scan is one pass over
/// `count × dimension` floats with the CPU's widest vector kernels (CSluiceKernels). The int8 mode keeps a second, quantised copy (one scale
/// per vector) that is four times smaller to scan; it picks the best `candidates` by the
/// approximate score and re-ranks those exactly, so the scores it returns are exact.
///
/// Large indexes add a partition of the rows into inverted lists (``InvertedLists``, an IVF
/// index trained by k-means: `VectorIndex+Lists.swift`); the scope-filtered ``search(_:k:tag:now:)``
/// then probes the lists nearest the query, scores their rows in int8 and re-ranks the best
/// exactly, instead of reading every row.
///
/// Deletes are real: the last vector moves into the hole (no tombstones to skip). A plain value;
/// the caller holds whatever lock it needs.
public struct VectorIndex: Sendable {
    public let dimension: Int
    /// Padded to a multiple of 16 lanes so every row is whole vector loads.
    let stride: Int
    var vectors: [Float] = []
    var quantized: [Int8] = []
    var scales: [Float] = []
    public private(set) var ids: [UInt64] = []
    /// Per row: a tag the scan filters on (the semantic cache's scope hash) and when the row
    /// expires (0 = never), so a filtered scan reads arrays, not a dictionary per row.
    var tags: [UInt64] = []
    var expiries: [Int64] = []
    var position: [UInt64: Int] = [:]
    /// The rows' partition, once trained (`VectorIndex+Lists.swift`).
    var lists: InvertedLists?
    /// Ids changed or moved since a partition began to be built (nil: none is being built);
    /// the build catches up with them when it is installed.
    var changedSincePartition: Set<UInt64>?
    /// Rows from which the index wants lists (``listsFrom``; tests lower it).
    public var partitionFrom = VectorIndex.listsFrom

    public init(dimension: Int) {
        precondition(dimension > 0)
        self.dimension = dimension
        self.stride = (dimension + 15) / 16 * 16
    }

    public var count: Int { ids.count }

    public struct Match: Sendable, Hashable {
        public var id: UInt64
        public var score: Float
    }

    /// Adds or replaces `id`. false: wrong dimension or a zero vector.
    @discardableResult
    public mutating func upsert(id: UInt64, vector: [Float], tag: UInt64 = 0, expiresAt: Int64 = 0) -> Bool {
        guard vector.count == dimension, let row = Self.normalised(vector, stride: stride) else { return false }
        let (q, scale) = Self.quantise(row)
        let i = position[id] ?? ids.count
        if i < ids.count {
            vectors.replaceSubrange(i * stride ..< (i + 1) * stride, with: row)
            scales[i] = scale
            tags[i] = tag
            expiries[i] = expiresAt
        } else {
            position[id] = i
            ids.append(id)
            tags.append(tag)
            expiries.append(expiresAt)
            vectors.append(contentsOf: row)
            scales.append(scale)
        }
        if lists == nil {
            if i < quantized.count / stride {
                quantized.replaceSubrange(i * stride ..< (i + 1) * stride, with: q)
            } else {
                quantized.append(contentsOf: q)
            }
        } else {
            // Partitioned: the lists hold the int8 codes.
            let entry = InvertedLists.Entry(code: q, scale: scale, tag: tag, expiresAt: expiresAt)
            row.withUnsafeBufferPointer { lists!.upsert(id, vector: $0.baseAddress!, entry) }
        }
        changedSincePartition?.insert(id)
        return true
    }

    /// Removes `id`; the last row moves into its place.
    @discardableResult
    public mutating func remove(id: UInt64) -> Bool {
        guard let i = position.removeValue(forKey: id) else { return false }
        lists?.remove(id)
        changedSincePartition?.insert(id)
        let last = ids.count - 1
        let flat = lists == nil
        if i != last {
            let moved = ids[last]
            ids[i] = moved
            position[moved] = i
            // A partition being assigned range by range may have passed row `i` already.
            changedSincePartition?.insert(moved)
            for j in 0..<stride { vectors[i * stride + j] = vectors[last * stride + j] }
            if flat { for j in 0..<stride { quantized[i * stride + j] = quantized[last * stride + j] } }
            scales[i] = scales[last]
            tags[i] = tags[last]
            expiries[i] = expiries[last]
        }
        ids.removeLast()
        tags.removeLast()
        expiries.removeLast()
        vectors.removeLast(stride)
        if flat { quantized.removeLast(stride) }
        scales.removeLast()
        return true
    }

    public func contains(id: UInt64) -> Bool { position[id] != nil }

    /// The cosine of `id`'s row with `query`; nil when `id` is not here or the query is unusable.
    public func score(id: UInt64, _ query: [Float]) -> Float? {
        guard let i = position[id], query.count == dimension, let q = Self.normalised(query, stride: stride) else { return nil }
        return vectors.withUnsafeBufferPointer { rows in
            q.withUnsafeBufferPointer { Self.dot($0.baseAddress!, rows.baseAddress! + i * stride, stride) }
        }
    }

    // MARK: Search

    /// The `k` most similar rows tagged `tag` and not expired at `now`, best first: through the
    /// inverted lists when the index has them and they hold `k` such rows near the query, else
    /// by an exact scan of the rows with that tag.
    public func search(_ query: [Float], k: Int, tag: UInt64, now: Int64) -> [Match] {
        guard query.count == dimension, k > 0, let q = Self.normalised(query, stride: stride) else { return [] }
        if lists != nil {
            let found = searchLists(q, k: k, probes: listProbes, candidates: max(Self.reranked, k), tag: tag, now: now)
            if found.count == k { return found }
        }
        var top = TopK(k)
        vectors.withUnsafeBufferPointer { rows in
            q.withUnsafeBufferPointer { qp in
                tags.withUnsafeBufferPointer { tags in
                    expiries.withUnsafeBufferPointer { expiries in
                        for i in 0..<tags.count where tags[i] == tag && (expiries[i] == 0 || expiries[i] > now) {
                            top.offer(Match(id: ids[i], score: Self.dot(qp.baseAddress!, rows.baseAddress! + i * stride, stride)))
                        }
                    }
                }
            }
        }
        return top.sorted()
    }

    public func search(_ query: [Float], k: Int, filter: (UInt64) -> Bool = { _ in true }) -> [Match] {
        guard query.count == dimension, k > 0, let q = Self.normalised(query, stride: stride) else { return [] }
        var top = TopK(k)
        Self.scanByChunks(vectors, q, count: ids.count, stride: stride, zero: Float(0), kernel: { sluice_scan_f32($0, $1, $2, $3, $4, $5) }) { start, scores in
            for j in scores.indices where filter(ids[start + j]) {
                top.offer(Match(id: ids[start + j], score: scores[j]))
            }
        }
        return top.sorted()
    }

    /// Rows scored per kernel call: the scores fit in L1 next to the rows being read.
    static let chunk = 256

    /// Scores the first `count` rows of `rows` (each `stride` lanes) against `query` with
    /// `kernel`, ``chunk`` rows per call, and hands each chunk's scores to `body` with the index
    /// of its first row.
    static func scanByChunks<Lane, Score>(
        _ rows: [Lane], _ query: [Lane], count: Int, stride: Int, zero: Score,
        kernel: (UnsafePointer<Lane>, UnsafePointer<Lane>, Int, Int, Int, UnsafeMutablePointer<Score>) -> Void,
        _ body: (Int, UnsafeBufferPointer<Score>) -> Void
    ) {
        var scores = [Score](repeating: zero, count: chunk)
        rows.withUnsafeBufferPointer { rows in
            query.withUnsafeBufferPointer { qp in
                scores.withUnsafeMutableBufferPointer { out in
                    var start = 0
                    while start < count {
                        let n = min(chunk, count - start)
                        kernel(qp.baseAddress!, rows.baseAddress! + start * stride, n, stride, stride, out.baseAddress!)
                        body(start, UnsafeBufferPointer(rebasing: out[0..<n]))
                        start += n
                    }
                }
            }
        }
    }

    /// The int8 scan: the best `candidates` by approximate score, re-ranked exactly; best first.
    /// (With lists, `filter` applies after the re-rank: benchmarks and tests pass none.)
    public func searchQuantised(_ query: [Float], k: Int, candidates: Int = 64, filter: (UInt64) -> Bool = { _ in true }) -> [Match] {
        guard query.count == dimension, k > 0, let q = Self.normalised(query, stride: stride) else { return [] }
        if let lists {
            // The flat int8 copy is gone: every list probed is the same scan.
            return searchLists(q, k: k, probes: lists.count, candidates: candidates, tag: nil, now: 0).filter { filter($0.id) }
        }
        let (qq, _) = Self.quantise(q)
        var rough = TopK(max(candidates, k))
        Self.scanByChunks(quantized, qq, count: ids.count, stride: stride, zero: Int32(0), kernel: { sluice_scan_i8($0, $1, $2, $3, $4, $5) }) { start, dots in
            for j in dots.indices where filter(ids[start + j]) {
                // Row index for the re-rank.
                rough.offer(Match(id: UInt64(start + j), score: Float(dots[j]) * scales[start + j]))
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

    // MARK: Kernels

    /// One row's exact score, through the run-time-dispatched kernel (the filtered scans call
    /// it for the rows that pass; whole scans go by chunks).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var out: Float = 0
        sluice_scan_f32(a, b, 1, n, n, &out)
        return out
    }

    /// The kernels in use: "avx512-vnni", "avx2", "neon-dotprod", "neon" or "portable".
    public static var kernels: String { String(cString: sluice_kernels_name()) }

    /// Kernels no better than this level (benchmarks and tests compare them; the default is the
    /// best the CPU has).
    public enum KernelLevel: Int32, Sendable, CaseIterable {
        case best = 0, portable = 1, avx2 = 2
    }

    public static func useKernels(_ level: KernelLevel) { sluice_kernels_force(level.rawValue) }

    /// Whether `v` has a direction float32 can hold: its squared length is finite and not zero.
    public static func normalisable(_ v: [Float]) -> Bool {
        var sum: Float = 0
        for x in v { sum += x * x }
        return sum > 0 && sum.isFinite && (1 / sum.squareRoot()).isFinite
    }

    /// Unit length, zero-padded to `stride`; nil for a zero or non-finite vector.
    static func normalised(_ v: [Float], stride: Int) -> [Float]? {
        var sum: Float = 0
        for x in v { sum += x * x }
        guard sum > 0, sum.isFinite else { return nil }
        let inv = 1 / sum.squareRoot()
        var row = [Float](repeating: 0, count: stride)
        for i in 0..<v.count { row[i] = v[i] * inv }
        return row
    }

    /// Symmetric int8 with one scale per vector: x ≈ q × scale; returns the scale to apply to a
    /// dot product with a query quantised the same way (query scale folded out: ranks only).
    static func quantise(_ row: [Float]) -> ([Int8], Float) {
        var peak: Float = 0
        for x in row { peak = max(peak, abs(x)) }
        guard peak > 0 else { return ([Int8](repeating: 0, count: row.count), 0) }
        let s = 127 / peak
        return (row.map { Int8(($0 * s).rounded()) }, peak / 127)
    }
}
