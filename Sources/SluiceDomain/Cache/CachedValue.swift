/// A value as the L1 holds it: a view of the entry's bytes after the key. Holding one keeps the
/// entry's storage alive (a reference, no copy).
public struct CachedValue: Sendable {
    public let entry: [UInt8]
    public let keyLength: Int

    /// `entry` is the key's bytes followed by the value's (``S3FIFOCache/entry(key:value:)``).
    public init(entry: [UInt8], keyLength: Int) {
        self.entry = entry
        self.keyLength = keyLength
    }

    public var count: Int { entry.count - keyLength }

    /// The value's bytes.
    public var bytes: ArraySlice<UInt8> { entry[keyLength...] }

    /// The value's bytes in place, for a reply written straight from them.
    @inlinable
    public func withUnsafeValueBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try entry.withUnsafeBytes { try body($0.rebased(from: keyLength)) }
    }
}
