import NIOCore

/// Finds where one RESP2 reply ends in a byte stream, without building it: the load generator
/// only counts replies, tells errors apart and times them.
///
/// A pure value type over `ByteBuffer`: `scan` reads from `readerIndex`, never moves it, and
/// says how many bytes the first reply takes once all of them are there.
public enum ReplyScanner {
    public enum Outcome: Equatable, Sendable {
        /// Not all of the reply is here yet.
        case incomplete
        /// A reply of `length` bytes; `isError` for a `-` reply.
        case complete(length: Int, isError: Bool)
        /// Not RESP: the stream cannot be followed further.
        case malformed(String)
    }

    /// Nesting deeper than this is refused (a server that answers so is broken or hostile).
    public static let maxDepth = 32
    /// Longest line (simple string, error, integer, length header) accepted.
    public static let maxLineLength = 64 * 1024

    public static func scan(_ buffer: ByteBuffer) -> Outcome {
        var offset = buffer.readerIndex
        switch scanValue(buffer, &offset, depth: 0) {
        case .incomplete: return .incomplete
        case .malformed(let why): return .malformed(why)
        case .complete(_, let isError): return .complete(length: offset - buffer.readerIndex, isError: isError)
        }
    }

    /// Advances `offset` past one value when it is complete.
    static func scanValue(_ buffer: ByteBuffer, _ offset: inout Int, depth: Int) -> Outcome {
        guard depth <= maxDepth else { return .malformed("replies nested deeper than \(maxDepth)") }
        guard let type = buffer.getInteger(at: offset, as: UInt8.self) else { return .incomplete }
        guard let lineEnd = lineEnd(buffer, from: offset + 1) else {
            return buffer.writerIndex - offset > maxLineLength ? .malformed("line longer than \(maxLineLength) bytes") : .incomplete
        }
        let header = offset + 1
        let afterLine = lineEnd + 2
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: ":"):
            offset = afterLine
            return .complete(length: 0, isError: false)
        case UInt8(ascii: "-"):
            offset = afterLine
            return .complete(length: 0, isError: true)
        case UInt8(ascii: "$"):
            guard let n = integer(buffer, from: header, to: lineEnd) else { return .malformed("bad bulk length") }
            if n == -1 { offset = afterLine; return .complete(length: 0, isError: false) }
            guard n >= 0, n <= 512 << 20 else { return .malformed("bulk length \(n) out of range") }
            let end = afterLine + n + 2
            guard buffer.writerIndex >= end else { return .incomplete }
            guard buffer.getInteger(at: end - 2, as: UInt16.self) == 0x0D0A else { return .malformed("bulk of \(n) bytes not followed by CRLF") }
            offset = end
            return .complete(length: 0, isError: false)
        case UInt8(ascii: "*"):
            guard let n = integer(buffer, from: header, to: lineEnd) else { return .malformed("bad array length") }
            if n == -1 { offset = afterLine; return .complete(length: 0, isError: false) }
            guard n >= 0, n <= 1 << 24 else { return .malformed("array length \(n) out of range") }
            var at = afterLine
            for _ in 0..<n {
                switch scanValue(buffer, &at, depth: depth + 1) {
                case .complete: continue
                case let other: return other
                }
            }
            offset = at
            return .complete(length: 0, isError: false)
        default:
            return .malformed("unexpected reply type byte \(type)")
        }
    }

    /// Index of the `\r` of the first CRLF at or after `from`.
    static func lineEnd(_ buffer: ByteBuffer, from: Int) -> Int? {
        let end = min(buffer.writerIndex, from + maxLineLength + 2)
        guard from < end else { return nil }
        return buffer.withUnsafeReadableBytes { raw -> Int? in
            let base = buffer.readerIndex
            var i = from - base
            let stop = end - base
            while i + 1 < stop {
                if raw[i] == UInt8(ascii: "\r") && raw[i + 1] == UInt8(ascii: "\n") { return i + base }
                i += 1
            }
            return nil
        }
    }

    /// A decimal integer in `[from, to)`: at most 18 digits after an optional sign, so the
    /// arithmetic cannot overflow.
    static func integer(_ buffer: ByteBuffer, from: Int, to: Int) -> Int? {
        guard to > from else { return nil }
        let negative = buffer.getInteger(at: from, as: UInt8.self) == UInt8(ascii: "-")
        guard to - from - (negative ? 1 : 0) <= 18 else { return nil }
        var value = 0
        for i in from..<to {
            let c = buffer.getInteger(at: i, as: UInt8.self)!
            if i == from && negative { continue }
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(c - UInt8(ascii: "0"))
        }
        if negative && to - from == 1 { return nil }
        return negative ? -value : value
    }
}
