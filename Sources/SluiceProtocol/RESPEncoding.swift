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
        writeInteger(UInt8(ascii: ":"))
        writeDecimal(value)
        writeRESPCRLF()
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
        writeInteger(UInt8(ascii: "*"))
        writeDecimal(count)
        writeRESPCRLF()
    }

    /// Bulk string from a buffer's readable bytes (the buffer's reader index moves).
    @inlinable
    public mutating func writeRESPBulk(_ value: inout ByteBuffer) {
        writeInteger(UInt8(ascii: "$"))
        writeDecimal(value.readableBytes)
        writeRESPCRLF()
        writeBuffer(&value)
        writeRESPCRLF()
    }

    @inlinable
    public mutating func writeRESPBulk(_ value: ByteBuffer) {
        var value = value
        writeRESPBulk(&value)
    }

    @inlinable
    public mutating func writeRESPBulk<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
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
        if value >= 0 && value < 10 {
            writeInteger(UInt8(truncatingIfNeeded: value) &+ 0x30)
            return
        }
        var magnitude = value.magnitude
        if value < 0 { writeInteger(UInt8(ascii: "-")) }
        // Up to 20 digits; fill from the end of a small stack tuple.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let count = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var i = 24
            repeat {
                i -= 1
                raw[i] = UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30
                magnitude /= 10
            } while magnitude > 0
            return i
        }
        withUnsafeBytes(of: &digits) { raw in
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: raw[count..<24]))
        }
    }
}
