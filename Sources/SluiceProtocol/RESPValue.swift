import NIOCore

/// A whole RESP2 value. The server uses it for replies that are built off the hot path
/// (INFO, STATS, replies completed later by a backend); clients and tests use its parser.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int)
    case bulkString(ByteBuffer?)
    case array([RESPValue]?)
    /// RESP3 map; a flat array of pairs in RESP2.
    case map([RESPValue])
    /// RESP3 double; a bulk string in RESP2.
    case double(Double)

    public static func bulk(_ s: String) -> RESPValue { .bulkString(ByteBuffer(string: s)) }
    public static let null = RESPValue.bulkString(nil)

    /// Encodes as RESP2.
    public func encode(into buffer: inout ByteBuffer) {
        var writer = RESPWriter(buffer: buffer, version: .resp2)
        buffer = ByteBuffer()
        encode(into: &writer)
        buffer = writer.buffer
    }

    /// `map` holds alternating keys and values.
    public func encode(into out: inout RESPWriter) {
        switch self {
        case .simpleString(let s): out.writeRESPSimpleString(s)
        case .error(let s): out.writeRESPError(s)
        case .integer(let n): out.writeRESPInteger(n)
        case .bulkString(let b?): out.writeRESPBulk(b)
        case .bulkString(nil): out.writeRESPNull()
        case .array(nil): out.writeRESPNullArray()
        case .array(let items?):
            out.writeRESPArrayHeader(items.count)
            for item in items { item.encode(into: &out) }
        case .map(let items):
            out.writeRESPMapHeader(items.count / 2)
            for item in items { item.encode(into: &out) }
        case .double(let d): out.writeRESPDouble(d)
        }
    }

    /// Parses one reply. nil: need more bytes. Throws on malformed input.
    /// Consumes the bytes only when a whole value was read.
    public init?(consuming buffer: inout ByteBuffer) throws(RESPProtocolError) {
        var copy = buffer
        guard let value = try RESPValue.parse(&copy, depth: 0) else { return nil }
        buffer = copy
        self = value
    }

    private static func line(_ buffer: inout ByteBuffer) -> String? {
        guard let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let length = nl - buffer.readerIndex
        guard length >= 1 else { return nil }
        let s = buffer.readString(length: length - 1)!
        buffer.moveReaderIndex(forwardBy: 2)
        return s
    }

    private static func parse(_ buffer: inout ByteBuffer, depth: Int) throws(RESPProtocolError) -> RESPValue? {
        guard depth < 64 else { throw RESPProtocolError("nesting too deep") }
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let text = line(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simpleString(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"):
            guard let n = Int(text) else { throw RESPProtocolError("invalid integer") }
            return .integer(n)
        case UInt8(ascii: "$"):
            guard let n = Int(text) else { throw RESPProtocolError("invalid bulk length") }
            if n < 0 { return .bulkString(nil) }
            guard n <= buffer.readableBytes - 2 else { return nil }  // not n + 2: n may be near Int.max
            let slice = buffer.readSlice(length: n)!
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulkString(slice)
        case UInt8(ascii: "*"):
            guard let n = Int(text) else { throw RESPProtocolError("invalid multibulk length") }
            if n < 0 { return .array(nil) }
            var items: [RESPValue] = []
            items.reserveCapacity(min(n, 1024))  // the count is the peer's word, not yet its bytes
            for _ in 0..<n {
                guard let item = try parse(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        case UInt8(ascii: "_"): return .bulkString(nil)
        case UInt8(ascii: ","):
            guard let d = Double(text) else { throw RESPProtocolError("invalid double") }
            return .double(d)
        case UInt8(ascii: "%"):
            guard let n = Int(text), n >= 0, n <= Int.max / 2 else { throw RESPProtocolError("invalid map length") }
            var items: [RESPValue] = []
            for _ in 0..<(2 * n) {
                guard let item = try parse(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .map(items)
        default:
            throw RESPProtocolError("unknown reply type '\(RESPRequestParser.printable(type))'")
        }
    }

    /// Text for humans and tests: bulk strings as UTF-8.
    public var string: String? {
        switch self {
        case .simpleString(let s), .error(let s): return s
        case .bulkString(let b?): return String(buffer: b)
        case .integer(let n): return String(n)
        default: return nil
        }
    }
}
