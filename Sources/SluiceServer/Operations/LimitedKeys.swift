/// The keys refused most often (RL.TAKE, RL.RESERVE, RL.SPEND), for the dashboard: a
/// space-saving sketch of ``capacity`` counters, so a flood of distinct keys costs a bounded
/// map and the heavy hitters still stand out (a count may be over by at most the smallest
/// count when it took that slot).
struct LimitedKeys: Sendable {
    static let capacity = 64
    var counts: [String: Int] = [:]

    mutating func count(_ key: String) {
        if counts[key] != nil {
            counts[key]! += 1
        } else if counts.count < Self.capacity {
            counts[key] = 1
        } else if let (smallest, n) = counts.min(by: { $0.value < $1.value }) {
            counts[smallest] = nil
            counts[key] = n + 1
        }
    }

    func top(_ n: Int) -> [(key: String, refused: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
    }
}
