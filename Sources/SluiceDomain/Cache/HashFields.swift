/// A hash's field → value pairs in the order fields were first set (what HGETALL answers), and
/// their encoding as one exact-cache entry's value: `u32 count`, then per pair `u32 field
/// length, field, u32 value length, value` (little-endian). The entry's byte cost is the encoding's
/// size, so a hash counts against the L1 budget and the file's bound like any value.
public struct HashFields: Sendable, Equatable {
    public private(set) var pairs: [(field: [UInt8], value: [UInt8])]

    public init(pairs: [(field: [UInt8], value: [UInt8])] = []) {
        self.pairs = pairs
    }

    public static func == (a: HashFields, b: HashFields) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.field == $1.field && $0.value == $1.value }
    }

    public var count: Int { pairs.count }
    public var isEmpty: Bool { pairs.isEmpty }

    public func value(of field: [UInt8]) -> [UInt8]? {
        pairs.first { $0.field == field }?.value
    }

    /// Sets a field; true when it is new.
    @discardableResult
    public mutating func set(_ field: [UInt8], _ value: [UInt8]) -> Bool {
        if let i = pairs.firstIndex(where: { $0.field == field }) {
            pairs[i].value = value
            return false
        }
        pairs.append((field, value))
        return true
    }

    /// Removes a field; true when it was there.
    @discardableResult
    public mutating func remove(_ field: [UInt8]) -> Bool {
        guard let i = pairs.firstIndex(where: { $0.field == field }) else { return false }
        pairs.remove(at: i)
        return true
    }

    /// Sets every pair (a later one wins over an earlier one with the same field); how many
    /// fields are new. One index for the call, so a large HSET is linear, not quadratic.
    public mutating func set(all new: [(field: [UInt8], value: [UInt8])]) -> Int {
        if new.count == 1 { return set(new[0].field, new[0].value) ? 1 : 0 }
        var index = [[UInt8]: Int](minimumCapacity: pairs.count + new.count)
        for (i, pair) in pairs.enumerated() { index[pair.field] = i }
        var added = 0
        for (field, value) in new {
            if let i = index[field] {
                pairs[i].value = value
            } else {
                index[field] = pairs.count
                pairs.append((field, value))
                added += 1
            }
        }
        return added
    }

    /// Removes every named field; how many were there.
    public mutating func remove(all fields: [[UInt8]]) -> Int {
        if fields.count == 1 { return remove(fields[0]) ? 1 : 0 }
        let gone = Set(fields)
        let before = pairs.count
        pairs.removeAll { gone.contains($0.field) }
        return before - pairs.count
    }

    /// Bytes of the encoding.
    public var encodedCount: Int {
        pairs.reduce(4) { $0 + 8 + $1.field.count + $1.value.count }
    }

    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(encodedCount)
        Self.append(UInt32(pairs.count), to: &out)
        for (field, value) in pairs {
            Self.append(UInt32(field.count), to: &out)
            out += field
            Self.append(UInt32(value.count), to: &out)
            out += value
        }
        return out
    }

    /// The pairs of an encoding; nil when the bytes are not one (a damaged entry).
    public static func decode<C: Collection>(_ bytes: C) -> HashFields? where C.Element == UInt8, C.Index == Int {
        var i = bytes.startIndex
        func u32() -> Int? {
            guard bytes.endIndex - i >= 4 else { return nil }
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(bytes[i + k]) << (8 * UInt32(k)) }
            i += 4
            return Int(v)
        }
        func chunk() -> [UInt8]? {
            guard let n = u32(), bytes.endIndex - i >= n else { return nil }
            defer { i += n }
            return Array(bytes[i..<(i + n)])
        }
        guard let count = u32(), count <= bytes.count / 8 else { return nil }
        var pairs: [(field: [UInt8], value: [UInt8])] = []
        pairs.reserveCapacity(count)
        for _ in 0..<count {
            guard let field = chunk(), let value = chunk() else { return nil }
            pairs.append((field, value))
        }
        guard i == bytes.endIndex else { return nil }
        return HashFields(pairs: pairs)
    }

    static func append(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(v & 0xFF)); out.append(UInt8((v >> 8) & 0xFF))
        out.append(UInt8((v >> 16) & 0xFF)); out.append(UInt8(v >> 24))
    }
}
