import Foundation

/// A reproducible Zipf(α) request trace over `keys` keys: rank r is requested with
/// probability ∝ 1/r^α. Sampled by inverse CDF (binary search over the cumulative weights)
/// from a seeded generator, so every policy sees the very same requests.
struct ZipfTrace {
    let cumulative: [Double]

    init(keys: Int, alpha: Double) {
        var c = [Double](repeating: 0, count: keys)
        var sum = 0.0
        for r in 0..<keys {
            sum += 1.0 / pow(Double(r + 1), alpha)
            c[r] = sum
        }
        cumulative = c.map { $0 / sum }
    }

    func sample(_ u: Double) -> Int {
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
