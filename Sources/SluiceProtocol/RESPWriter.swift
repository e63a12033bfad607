import NIOCore

public enum RESPVersion: Int, Sendable {
    case resp2 = 2
    case resp3 = 3
}

/// The connection's reply buffer plus the protocol version the client chose with HELLO.
/// Replies differ only where RESP3 has its own type (null, map, double); everything else is the
/// same bytes, so commands write through this without caring which version is in use.
public struct RESPWriter: Sendable {
    public var buffer: ByteBuffer
    public var version: RESPVersion
    /// Spare bytes for the command writing the next reply, to build what it derives from its
    /// arguments in (LLM.GET's question key) without an allocation per request: it lives as
    /// long as the writer, which a connection keeps from request to request. Whoever keeps
    /// what it built copies it first (or leaves the copy to ByteBuffer's copy-on-write).
    public var scratch: ByteBuffer?

    public init(buffer: ByteBuffer = ByteBuffer(), version: RESPVersion = .resp2) {
        self.buffer = buffer
        self.version = version
    }

    @inlinable public mutating func writeRESPOK() { buffer.writeRESPOK() }
    @inlinable public mutating func writeRESPSimpleString(_ s: String) { buffer.writeRESPSimpleString(s) }
    @inlinable public mutating func writeRESPError(_ line: String) { buffer.writeRESPError(line) }
    @inlinable public mutating func writeRESPInteger(_ n: Int) { buffer.writeRESPInteger(n) }
    @inlinable public mutating func writeRESPArrayHeader(_ n: Int) { buffer.writeRESPArrayHeader(n) }
    @inlinable public mutating func writeRESPBulk(_ value: inout ByteBuffer) { buffer.writeRESPBulk(&value) }
    @inlinable public mutating func writeRESPBulk(_ value: ByteBuffer) { buffer.writeRESPBulk(value) }
    @inlinable public mutating func writeRESPBulk(_ s: String) { buffer.writeRESPBulk(s) }
    @inlinable public mutating func writeRESPBulk<Bytes: Collection>(bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.writeRESPBulk(bytes: bytes)
    }
    /// Bytes that read the same in RESP2 and RESP3 (no nulls, maps or doubles in them).
    @inlinable public mutating func writeStaticString(_ s: StaticString) { buffer.writeStaticString(s) }

    /// RESP2 `$-1`, RESP3 `_`.
    @inlinable
    public mutating func writeRESPNull() {
        if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("$-1\r\n") }
    }

    /// RESP2 `*-1`, RESP3 `_`.
    @inlinable
    public mutating func writeRESPNullArray() {
        if version == .resp3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("*-1\r\n") }
    }

    /// A map of `pairs` entries: RESP3 `%n`, RESP2 a flat array of 2n items.
    @inlinable
    public mutating func writeRESPMapHeader(_ pairs: Int) {
        if version == .resp3 {
            buffer.writeInteger(UInt8(ascii: "%"))
            buffer.writeDecimal(pairs)
            buffer.writeInteger(UInt16(0x0d0a))
        } else {
            buffer.writeRESPArrayHeader(pairs * 2)
        }
    }

    /// RESP3 `,x`, RESP2 a bulk string.
    public mutating func writeRESPDouble(_ d: Double) {
        if version == .resp3 {
            buffer.writeString(",\(d)\r\n")
        } else {
            buffer.writeRESPBulk(String(d))
        }
    }
}
