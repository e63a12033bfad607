import NIOCore

/// RESP2 reply writers. They append straight into the connection's output buffer, so a reply
/// costs no intermediate allocation.
extension ByteBuffer {
    @inlinable
    public mutating func writeRESPSimpleString(_ s: StaticString) {
        writeInteger(UInt8(ascii: "+"))
        writeStaticString(s)
        writeRESPCRLF()
    }

    @inlinable
    public mutating func writeRESPOK() {
        writeStaticString("+OK\r\n")
    }

    @inlinable
    public mutating func writeRESPSimpleString(_ s: String) {
        writeInteger(UInt8(ascii: "+"))
        writeString(s)
        writeRESPCRLF()
    }

    /// `-ERR message` unless the message already starts with an error code such as `NOAUTH`.
    @inlinable
    public mutating func writeRESPError(_ message: String) {
        writeInteger(UInt8(ascii: "-"))
        // Error lines cannot contain CR or LF.
        for byte in message.utf8 {
            writeInteger(byte == 0x0d || byte == 0x0a ? UInt8(ascii: " ") : byte)
        }
        writeRESPCRLF()
    }

    @inlinable
    public mutating func writeRESPInteger(_ value: Int) {
        writeRESPNumberLine(UInt8(ascii: ":"), value)
    }

    /// `:n\r\n`, `*n\r\n`: in one reservation, as every small write to a ByteBuffer is its
    /// own capacity and exclusivity check, and these are in most replies.
    @inlinable
    mutating func writeRESPNumberLine(_ type: UInt8, _ value: Int) {
        writeReserved(minimumWritableBytes: 23) { space in
            var c = RESPRawCursor(space)
            c.putNumberLine(type, value)
            return c.count
        }
    }

    /// `value` in ASCII decimal at `out` (room for 20 bytes); how many bytes were written.
    ///
    /// Digits are counted by comparison and written two at a time from a table: every reply
    /// writes one to three of these (lengths, ages), and a division per digit was a visible
    /// share of a cache hit's reply.
    @inlinable @usableFromInline
    static func decimal(_ value: Int, into out: UnsafeMutableRawPointer) -> Int {
        var magnitude = value.magnitude
        var sign = 0
        if value < 0 {
            out.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            sign = 1
        }
        if magnitude < 10 {
            out.storeBytes(of: UInt8(truncatingIfNeeded: magnitude) &+ 0x30, toByteOffset: sign, as: UInt8.self)
            return sign + 1
        }
        // UInt.max has 20 digits; 10^19 is the largest power of ten that fits.
        var digits = 2
        var power: UInt = 100
        while digits < 20, magnitude >= power {
            digits += 1
            if digits < 20 { power &*= 10 }
        }
        var i = sign + digits
        let pairs = Self.digitPairs.utf8Start
        while magnitude >= 100 {
            let pair = Int(truncatingIfNeeded: magnitude % 100) &* 2
            magnitude /= 100
            i -= 2
            out.storeBytes(of: pairs[pair], toByteOffset: i, as: UInt8.self)
            out.storeBytes(of: pairs[pair + 1], toByteOffset: i + 1, as: UInt8.self)
        }
        if magnitude >= 10 {
            let pair = Int(truncatingIfNeeded: magnitude) &* 2
            out.storeBytes(of: pairs[pair], toByteOffset: sign, as: UInt8.self)
            out.storeBytes(of: pairs[pair + 1], toByteOffset: sign + 1, as: UInt8.self)
        } else {
            out.storeBytes(of: UInt8(truncatingIfNeeded: magnitude) &+ 0x30, toByteOffset: sign, as: UInt8.self)
        }
        return sign + digits
    }

    /// "00" to "99", each pair at twice its value (a computed literal: it folds to a constant
    /// where a stored one is reached through an accessor from other modules).
    @inlinable
    static var digitPairs: StaticString {
        """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """
    }

    /// A bulk string of the bytes at `raw`: header, bytes and CRLF in one reservation.
    @inlinable
    public mutating func writeRESPBulk(raw: UnsafeRawBufferPointer) {
        writeReserved(minimumWritableBytes: raw.count + 25) { space in
            var c = RESPRawCursor(space)
            c.putBulk(raw)
            return c.count
        }
    }

    @inlinable
    public mutating func writeRESPNull() {
        writeStaticString("$-1\r\n")
    }

    @inlinable
    public mutating func writeRESPNullArray() {
        writeStaticString("*-1\r\n")
    }

    @inlinable
    public mutating func writeRESPArrayHeader(_ count: Int) {
        writeRESPNumberLine(UInt8(ascii: "*"), count)
    }

    /// Bulk string from a buffer's readable bytes (the buffer's reader index moves).
    @inlinable
    public mutating func writeRESPBulk(_ value: inout ByteBuffer) {
        value.withUnsafeReadableBytes { writeRESPBulk(raw: $0) }
        value.moveReaderIndex(to: value.writerIndex)
    }

    @inlinable
    public mutating func writeRESPBulk(_ value: ByteBuffer) {
        var value = value
        writeRESPBulk(&value)
    }

    @inlinable
    public mutating func writeRESPBulk<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        // Contiguous bytes (arrays, their slices, buffer views) in one reservation.
        let done: Void? = bytes.withContiguousStorageIfAvailable { writeRESPBulk(raw: UnsafeRawBufferPointer($0)) }
        if done != nil { return }
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(bytes.count)
        writeRESPCRLF()
        writeBytes(bytes)
        writeRESPCRLF()
    }

    @inlinable
    public mutating func writeRESPBulk(_ string: String) {
        writeRESPBulk(bytes: string.utf8)
    }

    @inlinable
    mutating func writeRESPCRLF() {
        writeInteger(UInt16(0x0d0a))
    }

    /// ASCII decimal without going through `String`.
    @inlinable
    public mutating func writeDecimal(_ value: Int) {
        writeReserved(minimumWritableBytes: 20) { Self.decimal(value, into: $0.baseAddress!) }
    }

    /// NIO's `writeWithUnsafeMutableBytes(minimumWritableBytes:)`, with the space found by
    /// offset: NIO's slices the storage with a generic `dropFirst` that is not specialised
    /// away, a call on every reply of the hot paths. `body` returns how many bytes it wrote.
    @inlinable
    @discardableResult
    public mutating func writeReserved(minimumWritableBytes: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        reserveCapacity(minimumWritableBytes: minimumWritableBytes)
        let start = writerIndex
        let written = withVeryUnsafeMutableBytes { all in
            body(UnsafeMutableRawBufferPointer(start: all.baseAddress! + start, count: all.count - start))
        }
        moveWriterIndex(forwardBy: written)
        return written
    }
}
