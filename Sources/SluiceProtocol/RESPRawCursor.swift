import NIOCore

/// Writes a reply's items into memory reserved once for the whole reply
/// (`ByteBuffer.writeReserved(minimumWritableBytes:_:)`): each write to a
/// ByteBuffer checks capacity and exclusive access, which is most of the cost of writing a small
/// item. For the hottest replies only; the caller reserves enough (see each method's maximum).
public struct RESPRawCursor {
    @usableFromInline let base: UnsafeMutableRawPointer
    /// Bytes reserved: every write is checked against it (a precondition, not an assert: a
    /// miscounted reservation must stop the process, never write past the buffer).
    @usableFromInline let capacity: Int
    /// Bytes written so far.
    @usableFromInline var written = 0
    public var count: Int { written }

    @inlinable
    public init(_ out: UnsafeMutableRawBufferPointer) {
        base = out.baseAddress!
        capacity = out.count
    }

    @inlinable
    func ensure(_ bytes: Int) {
        precondition(bytes <= capacity - written, "RESPRawCursor: the reply is larger than the space reserved for it")
    }

    /// `s.utf8CodeUnitCount` bytes.
    @inlinable
    public mutating func put(_ s: StaticString) {
        s.withUTF8Buffer { put(UnsafeRawBufferPointer($0)) }
    }

    /// `raw.count` bytes.
    @inlinable
    public mutating func put(_ raw: UnsafeRawBufferPointer) {
        ensure(raw.count)
        if raw.count > 0 { (base + written).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        written += raw.count
    }

    /// A bulk string: at most `raw.count + 25` bytes.
    @inlinable
    public mutating func putBulk(_ raw: UnsafeRawBufferPointer) {
        ensure(raw.count + 25)
        (base + written).storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        written += 1
        written += ByteBuffer.decimal(raw.count, into: base + written)
        putCRLF()
        put(raw)
        putCRLF()
    }

    /// An integer item: at most 23 bytes.
    @inlinable
    public mutating func putInteger(_ value: Int) {
        putNumberLine(UInt8(ascii: ":"), value)
    }

    /// `type`, `value` in decimal, CRLF (`:n`, `*n`): at most 23 bytes.
    @inlinable
    public mutating func putNumberLine(_ type: UInt8, _ value: Int) {
        ensure(23)
        (base + written).storeBytes(of: type, as: UInt8.self)
        written += 1
        written += ByteBuffer.decimal(value, into: base + written)
        putCRLF()
    }

    @inlinable
    mutating func putCRLF() {
        (base + written).storeBytes(of: 0x0d, as: UInt8.self)
        (base + written + 1).storeBytes(of: 0x0a, as: UInt8.self)
        written += 2
    }
}
