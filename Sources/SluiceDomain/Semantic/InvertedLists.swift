import CSluiceKernels

/// A coarse partition of a ``VectorIndex``'s rows (an IVF index, as faiss's `IndexIVF`): each
/// row belongs to the list of its nearest centroid, and a search scans only the lists of the
/// centroids nearest the query. With `L` lists and `p` probed, a search reads about `p / L` of
/// the rows, and misses a best row only when it lies in a list the query did not probe.
///
/// Each list keeps its entries' int8 codes, scales, tags and expiry times side by side, so a
/// probe reads memory in order (a list of row numbers into the index's arrays made every row a
/// cache miss: 1,000,000 rows searched in 5.9 ms instead of 2.9). The index keeps the float
/// rows for the exact re-rank; its own flat int8 copy is dropped once it has lists.
///
/// The centroids come from spherical k-means over a sample of the rows (``train``) and do not
/// move afterwards: new rows join the list of their nearest centroid, so the lists stay exact
/// as a partition even when they grow unevenly. Entries are known by the index's ids.
struct InvertedLists: Sendable {
    let stride: Int
    let dimension: Int
    /// `count × stride` floats, unit length.
    let centroids: [Float]
    private(set) var lists: [Members]
    /// Per id: its list (high 32 bits) and its place in that list (low 32 bits), so a removal is
    /// O(1). Keyed by id, not row, so that lists built from a snapshot of the index stay valid
    /// when the index moves rows (``VectorIndex/remove(id:)`` fills holes with its last row).
    private var places: [UInt64: UInt64] = [:]

    /// One list's entries, each with what a probe reads.
    struct Members: Sendable {
        var ids: [UInt64] = []
        /// `ids.count × stride` int8 lanes.
        var codes: [Int8] = []
        var scales: [Float] = []
        var tags: [UInt64] = []
        var expiries: [Int64] = []

        var count: Int { ids.count }
    }

    /// What a list holds of one entry.
    struct Entry {
        var code: [Int8]
        var scale: Float
        var tag: UInt64
        var expiresAt: Int64
    }

    var count: Int { lists.count }
    var entries: Int { places.count }

    init(centroids: [Float], stride: Int, dimension: Int) {
        precondition(!centroids.isEmpty && centroids.count % stride == 0)
        self.centroids = centroids
        self.stride = stride
        self.dimension = dimension
        self.lists = Array(repeating: Members(), count: centroids.count / stride)
    }

    /// Every centroid's score against `vector` (`stride` floats).
    private func centroidScores(_ vector: UnsafePointer<Float>) -> [Float] {
        var scores = [Float](repeating: 0, count: count)
        centroids.withUnsafeBufferPointer { c in
            scores.withUnsafeMutableBufferPointer { out in
                sluice_scan_f32(vector, c.baseAddress!, count, stride, dimension, out.baseAddress!)
            }
        }
        return scores
    }

    /// The list whose centroid is nearest `vector`.
    func nearest(_ vector: UnsafePointer<Float>) -> Int {
        let scores = centroidScores(vector)
        var best = 0
        for i in 1..<scores.count where scores[i] > scores[best] { best = i }
        return best
    }

    /// The `probes` lists nearest `query`, nearest first.
    func nearest(_ query: UnsafePointer<Float>, probes: Int) -> [Int] {
        var top = TopK(min(max(probes, 1), count))
        for (i, s) in centroidScores(query).enumerated() { top.offer(VectorIndex.Match(id: UInt64(i), score: s)) }
        return top.sorted().map { Int($0.id) }
    }

    /// Adds `id` (or moves it, when it is already here) to the list nearest `vector`.
    mutating func upsert(_ id: UInt64, vector: UnsafePointer<Float>, _ entry: Entry) {
        remove(id)
        let list = nearest(vector)
        places[id] = UInt64(list) << 32 | UInt64(lists[list].count)
        lists[list].ids.append(id)
        lists[list].codes.append(contentsOf: entry.code)
        lists[list].scales.append(entry.scale)
        lists[list].tags.append(entry.tag)
        lists[list].expiries.append(entry.expiresAt)
    }

    /// Takes `id` out of its list; the list's last member fills its place.
    mutating func remove(_ id: UInt64) {
        guard let place = places.removeValue(forKey: id) else { return }
        let list = Int(place >> 32), slot = Int(place & 0xFFFF_FFFF)
        let last = lists[list].count - 1
        if slot != last {
            let moved = lists[list].ids[last]
            lists[list].ids[slot] = moved
            for j in 0..<stride { lists[list].codes[slot * stride + j] = lists[list].codes[last * stride + j] }
            lists[list].scales[slot] = lists[list].scales[last]
            lists[list].tags[slot] = lists[list].tags[last]
            lists[list].expiries[slot] = lists[list].expiries[last]
            places[moved] = UInt64(list) << 32 | UInt64(slot)
        }
        lists[list].ids.removeLast()
        lists[list].codes.removeLast(stride)
        lists[list].scales.removeLast()
        lists[list].tags.removeLast()
        lists[list].expiries.removeLast()
    }

    /// The list `id` is in (tests).
    func list(of id: UInt64) -> Int? { places[id].map { Int($0 >> 32) } }

    /// Whether every id's recorded place holds it, and every member is recorded (tests).
    func isConsistent() -> Bool {
        var members = 0
        for (l, m) in lists.enumerated() {
            guard m.codes.count == m.count * stride, m.scales.count == m.count, m.tags.count == m.count,
                  m.expiries.count == m.count else { return false }
            for (slot, id) in m.ids.enumerated() where places[id] != UInt64(l) << 32 | UInt64(slot) { return false }
            members += m.count
        }
        return members == places.count
    }

    /// The entries of the `probes` lists nearest `query` (float, normalised; `code` its int8
    /// form) that are tagged `tag` (any, when nil) and not expired at `now`, offered to `rough`
    /// with their approximate scores.
    func probe(_ query: UnsafePointer<Float>, code: UnsafePointer<Int8>, probes: Int, tag: UInt64?, now: Int64,
               into rough: inout TopK) {
        var dots = [Int32]()
        for list in nearest(query, probes: probes) {
            let members = lists[list]
            guard members.count > 0 else { continue }
            if dots.count < members.count { dots = [Int32](repeating: 0, count: members.count) }
            members.codes.withUnsafeBufferPointer { codes in
                dots.withUnsafeMutableBufferPointer { out in
                    sluice_scan_i8(code, codes.baseAddress!, members.count, stride, stride, out.baseAddress!)
                }
            }
            for j in 0..<members.count {
                if let tag, members.tags[j] != tag { continue }
                let expiry = members.expiries[j]
                guard expiry == 0 || expiry > now else { continue }
                rough.offer(VectorIndex.Match(id: members.ids[j], score: Float(dots[j]) * members.scales[j]))
            }
        }
    }

    // MARK: Training

    /// How many lists suit `rows` rows: about one per 64 rows, at least 16 (each insert scores
    /// every centroid, so the index caps their number).
    static func listCount(forRows rows: Int) -> Int { max(16, rows / 64) }

    /// Spherical k-means: `lists` unit centroids for the `sampleCount` rows of `sample` (each
    /// `stride` floats, unit length). Starts from distinct sample rows picked by `seed`; a list
    /// left empty takes a sample row instead. Costs `iterations × sampleCount × lists` dot
    /// products: the caller runs it without holding the index's lock.
    static func train(sample: [Float], sampleCount: Int, stride: Int, dimension: Int, lists: Int,
                      iterations: Int, seed: UInt64) -> [Float] {
        precondition(sampleCount > 0 && sample.count >= sampleCount * stride)
        let k = max(1, min(lists, sampleCount))
        var rng = SplitMix64(seed: seed)
        // Distinct starting rows: a partial Fisher–Yates shuffle of the sample's row numbers.
        var order = Array(0..<sampleCount)
        for i in 0..<k { order.swapAt(i, i + Int(rng.next() % UInt64(sampleCount - i))) }
        var centroids = [Float](repeating: 0, count: k * stride)
        for c in 0..<k {
            for j in 0..<stride { centroids[c * stride + j] = sample[order[c] * stride + j] }
        }
        var sums = [Float](repeating: 0, count: k * stride)
        var sizes = [Int](repeating: 0, count: k)
        var scores = [Float](repeating: 0, count: k)
        for _ in 0..<max(iterations, 1) {
            for i in sums.indices { sums[i] = 0 }
            for i in sizes.indices { sizes[i] = 0 }
            sample.withUnsafeBufferPointer { rows in
                centroids.withUnsafeBufferPointer { c in
                    scores.withUnsafeMutableBufferPointer { out in
                        for r in 0..<sampleCount {
                            let row = rows.baseAddress! + r * stride
                            sluice_scan_f32(row, c.baseAddress!, k, stride, dimension, out.baseAddress!)
                            var best = 0
                            for i in 1..<k where out[i] > out[best] { best = i }
                            sizes[best] += 1
                            for j in 0..<dimension { sums[best * stride + j] += row[j] }
                        }
                    }
                }
            }
            for c in 0..<k {
                var norm: Float = 0
                for j in 0..<dimension { norm += sums[c * stride + j] * sums[c * stride + j] }
                if sizes[c] == 0 || !(norm > 0) || !norm.isFinite {
                    let r = Int(rng.next() % UInt64(sampleCount))
                    for j in 0..<stride { centroids[c * stride + j] = sample[r * stride + j] }
                    continue
                }
                let inv = 1 / norm.squareRoot()
                for j in 0..<dimension { centroids[c * stride + j] = sums[c * stride + j] * inv }
            }
        }
        return centroids
    }
}
