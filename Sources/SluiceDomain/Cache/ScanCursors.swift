import DequeModule

/// SCAN's cursors over the embedded keyspace, which is walked in key order: a cursor stands for
/// the last key a page returned, and the next page starts after it. So every key present for a
/// whole iteration is returned exactly once however the keyspace changes meanwhile, which is
/// what Redis promises (at least once) and more.
///
/// Clients treat a cursor as a number, so the key is kept here under a random 63-bit id. The
/// table is bounded — ``capacity`` cursors and ``maxBytes`` of keys: past either the oldest
/// cursors are forgotten, and SCAN with one of them answers "invalid cursor" (a client then
/// starts again from 0).
public struct ScanCursors: Sendable {
    public static let defaultCapacity = 16_384
    /// Bytes of keys the table keeps (a long key in every cursor would otherwise add up).
    public static let maxBytes = 16 << 20

    public let capacity: Int
    var keys: [UInt64: [UInt8]] = [:]
    var bytes = 0
    /// Ids oldest first.
    var order = Deque<UInt64>()
    var random: SplitMix64

    public init(capacity: Int = ScanCursors.defaultCapacity, seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.capacity = max(capacity, 1)
        random = SplitMix64(seed: seed)
    }

    public var count: Int { keys.count }

    /// A new cursor that resumes after `key`.
    public mutating func cursor(after key: [UInt8]) -> UInt64 {
        var id: UInt64
        repeat { id = random.next() & 0x7FFF_FFFF_FFFF_FFFF } while id == 0 || keys[id] != nil
        // The oldest go first, until both the count and the bytes have room.
        while let oldest = order.first, keys.count >= capacity || bytes + key.count > Self.maxBytes {
            order.removeFirst()
            if let gone = keys.removeValue(forKey: oldest) { bytes -= gone.count }
        }
        order.append(id)
        keys[id] = key
        bytes += key.count
        return id
    }

    /// The key a cursor resumes after; nil for 0 (start) — and `.unknown` for a cursor never
    /// given or already forgotten.
    public enum Lookup: Sendable, Equatable {
        case start
        case after([UInt8])
        case unknown
    }

    public func lookup(_ cursor: UInt64) -> Lookup {
        if cursor == 0 { return .start }
        guard let key = keys[cursor] else { return .unknown }
        return .after(key)
    }
}
