import NIOCore
import SluiceDomain

/// KEYS's answer as it is gathered page by page: the keys that match, up to a bound. A class so
/// that the pages, which arrive on one event loop one after another, append to one array
/// instead of copying it each time.
final class KeyCollector: @unchecked Sendable {
    let pattern: GlobPattern
    let limit: Int
    private(set) var found: [ByteBuffer] = []

    init(pattern: GlobPattern, limit: Int) {
        self.pattern = pattern
        self.limit = limit
    }

    /// Keeps `key` if it matches; false once more than `limit` keys matched.
    func add(_ key: ByteBuffer) -> Bool {
        guard pattern.matchesEverything || pattern.matches(Array(key.readableBytesView)) else { return true }
        found.append(key)
        return found.count <= limit
    }
}
