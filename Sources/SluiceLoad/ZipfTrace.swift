import Foundation

/// A Zipf(α) distribution over `keys` ranks: rank r is drawn with probability ∝ 1/(r+1)^α.
/// Sampled by inverse CDF (binary search over the cumulative weights), so a seeded generator
/// gives the very same sequence every run. The table costs 8 bytes per key; callers bound
/// `keys`.
public struct ZipfTrace: Sendable {
    let cumulative: [Double]

    public init(keys: Int, alpha: Double) {
        var c = [Double](repeating: 0, count: max(keys, 1))
        var sum = 0.0
        for r in 0..<c.count {
            sum += 1.0 / pow(Double(r + 1), alpha)
            c[r] = sum
        }
        cumulative = c.map { $0 / sum }
    }

    /// The rank for a uniform `u` in [0, 1).
    public func sample(_ u: Double) -> Int {
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
