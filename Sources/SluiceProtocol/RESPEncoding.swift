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
        writeWithUnsafeMutableBytes(minimumWritableBytes: 23) { space in
            var c = RESPRawCursor(space)
            c.putNumberLine(type, value)
            return c.count
        }
    }

    /// `value` in ASCII decimal at `out` (room for 20 bytes); how many bytes were written.
    @inlinable @usableFromInline
    static func decimal(_ value: Int, into out: UnsafeMutableRawPointer) -> Int {
        var magnitude = value.magnitude
        var sign = 0
        if value < 0 {
            out.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            sign = 1
        }
        var digits = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var i = sign + digits
        repeat {
            i -= 1
            out.storeBytes(of: UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30, toByteOffset: i, as: UInt8.self)
            magnitude /= 10
        } while magnitude > 0
        return sign + digits
    }

    /// A bulk string of the bytes at `raw`: header, bytes and CRLF in one reservation.
    @inlinable
    public mutating func writeRESPBulk(raw: UnsafeRawBufferPointer) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: raw.count + 25) { space in
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
        writeWithUnsafeMutableBytes(minimumWritableBytes: 20) { Self.decimal(value, into: $0.baseAddress!) }
    }
}
