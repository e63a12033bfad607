import NIOCore

/// Limits that keep one client from making the server buffer unbounded input.
public struct RESPLimits: Sendable, Hashable {
    /// Longest inline line, in bytes (Redis: 64 KiB).
    public var maxInlineLength: Int
    /// Largest single bulk string (a value), in bytes.
    public var maxBulkLength: Int
    /// Most arguments in one request.
    public var maxArguments: Int
    /// Largest whole request frame, in bytes.
    public var maxRequestBytes: Int
    /// A request over a limit closes the connection (a protocol error) instead of being refused
    /// and skipped: what Redis does for clients that have not authenticated yet.
    public var overLimitIsFatal: Bool

    public init(
        maxInlineLength: Int = 64 * 1024,
        maxBulkLength: Int = 16 * 1024 * 1024,
        maxArguments: Int = 1024 * 1024,
        maxRequestBytes: Int? = nil,
        overLimitIsFatal: Bool = false
    ) {
        self.maxInlineLength = maxInlineLength
        self.maxBulkLength = maxBulkLength
        self.maxArguments = maxArguments
        self.maxRequestBytes = maxRequestBytes ?? (maxBulkLength + 1024 * 1024)
        self.overLimitIsFatal = overLimitIsFatal
    }

    /// For a connection that has not authenticated (when a password is set): small requests
    /// only — AUTH, HELLO and the like — so an unauthenticated peer cannot make the server hold
    /// megabytes. Redis's limits for the same case are alike (10 kB bulks, 1024 arguments).
    public static let beforeAuth = RESPLimits(maxInlineLength: 16 * 1024, maxBulkLength: 16 * 1024, maxArguments: 32,
                                              maxRequestBytes: 64 * 1024, overLimitIsFatal: true)
}

/// A request the parser refused but could step over: the connection stays usable and the
/// client gets one `-ERR` with this message, in order with its other replies.
public struct RESPRejection: Error, Sendable, Hashable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// Input that breaks RESP framing itself; after it the byte stream can't be re-synchronised,
/// so the server replies `-ERR Protocol error: ...` and closes, as Redis does.
public struct RESPProtocolError: Error, Sendable, Hashable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

public enum RESPRequest: Sendable, Equatable {
    case command(RESPCommand)
    case rejected(RESPRejection)
}

/// Incremental request parser. `next(from:)` returns nil when it needs more bytes, a request
/// when one is complete, and throws ``RESPProtocolError`` when the stream is broken.
///
/// It consumes bytes only for complete requests, except while stepping over a rejected
/// request's payload, which it discards as it arrives instead of buffering it. A request that
/// arrives in many reads is not re-scanned from its start each time: the parser remembers how
/// far it got (so the work is linear in the request's size), as long as it is called again with
/// the same buffer, more bytes appended.
public struct RESPRequestParser: Sendable {
    public var limits: RESPLimits
    var discard: Discard?
    var partial: PartialArray?
    /// Element headers examined so far (tests check that the work is linear).
    var headersExamined = 0

    /// Progress through the payload of a request already rejected.
    struct Discard: Sendable {
        /// Bytes of the current bulk (including its CRLF) still to drop.
        var bytes: Int
        /// Whole bulk strings still to drop after that.
        var elements: Int
        /// Inline line: drop through the next "\n".
        var untilNewline: Bool
    }

    /// How far an incomplete array request has been checked.
    struct PartialArray: Sendable {
        /// The buffer's reader index when the request began (a different one: start over).
        var start: Int
        var count: Int
        /// The next element to check, and where its `$` header is.
        var element: Int
        var index: Int
        /// Bytes of the frame up to `index`.
        var total: Int
    }

    public init(limits: RESPLimits = RESPLimits()) {
        self.limits = limits
    }

    public mutating func next(from buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPRequest? {
        while true {
            if discard != nil {
                guard try discardPending(&buffer) else { return nil }
            }
            guard let first = buffer.readableBytesView.first else { return nil }
            if first == UInt8(ascii: "*") {
                switch try parseArray(&buffer) {
                case .needMore: return nil
                case .empty: continue  // "*0" / "*-1": Redis does nothing and sends nothing
                case .request(let request): return request
                }
            }
            switch try parseInline(&buffer) {
            case .needMore: return nil
            case .empty: continue  // blank line: Redis ignores it
            case .request(let request): return request
            }
        }
    }

    enum Step {
        case needMore, empty, request(RESPRequest)
    }

    // MARK: RESP arrays

    mutating func parseArray(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Step {
        let start = buffer.readerIndex
        let end = buffer.writerIndex
        var state: PartialArray
        if let p = partial, p.start == start {
            state = p
        } else {
            partial = nil
            guard let (count, afterHeader) = try readLength(buffer, at: start + 1, end: end, what: "multibulk length") else {
                return .needMore
            }
            if count <= 0 {
                buffer.moveReaderIndex(to: afterHeader)
                return .empty
            }
            if count > limits.maxArguments {
                if limits.overLimitIsFatal { throw RESPProtocolError("too many arguments before AUTH (\(count) > \(limits.maxArguments))") }
                buffer.moveReaderIndex(to: afterHeader)
                discard = Discard(bytes: 0, elements: count, untilNewline: false)
                return .request(.rejected(RESPRejection("too many arguments in request (\(count) > \(limits.maxArguments))")))
            }
            state = PartialArray(start: start, count: count, element: 0, index: afterHeader, total: afterHeader - start)
        }
        while state.element < state.count {
            let index = state.index
            headersExamined &+= 1
            guard index < end else {
                partial = state
                return .needMore
            }
            guard buffer.getInteger(at: index, as: UInt8.self) == UInt8(ascii: "$") else {
                partial = nil
                let got = buffer.getInteger(at: index, as: UInt8.self)!
                throw RESPProtocolError("expected '$', got '\(Self.printable(got))'")
            }
            let header: (Int, Int)?
            do {
                header = try readLength(buffer, at: index + 1, end: end, what: "bulk length")
            } catch {
                partial = nil
                throw error
            }
            guard let (length, afterLength) = header else {
                partial = state
                return .needMore
            }
            if length < 0 {
                partial = nil
                throw RESPProtocolError("invalid bulk length")
            }
            let total = state.total + (afterLength - index) + length + 2
            if length > limits.maxBulkLength || total > limits.maxRequestBytes {
                partial = nil
                if limits.overLimitIsFatal { throw RESPProtocolError("request too large before AUTH") }
                buffer.moveReaderIndex(to: afterLength)
                discard = Discard(bytes: length + 2, elements: state.count - state.element - 1, untilNewline: false)
                if length > limits.maxBulkLength {
                    return .request(.rejected(RESPRejection("value too large (\(length) bytes > \(limits.maxBulkLength))")))
                }
                return .request(.rejected(RESPRejection("request too large (more than \(limits.maxRequestBytes) bytes)")))
            }
            let payloadEnd = afterLength + length
            guard payloadEnd + 2 <= end else {
                partial = state
                return .needMore
            }
            guard buffer.getInteger(at: payloadEnd, as: UInt16.self) == Self.crlf else {
                partial = nil
                throw RESPProtocolError("bulk string not terminated by CRLF")
            }
            state.index = payloadEnd + 2
            state.total = total
            state.element += 1
        }
        partial = nil
        let frame = buffer.readSlice(length: state.index - start)!
        return .request(.command(RESPCommand(validatedFrame: frame, count: state.count)))
    }

    static let crlf: UInt16 = UInt16(UInt8(ascii: "\r")) << 8 | UInt16(UInt8(ascii: "\n"))

    /// Reads decimal digits up to CRLF starting at `index`. nil: CRLF not yet there.
    func readLength(_ buffer: ByteBuffer, at index: Int, end: Int, what: String) throws(RESPProtocolError) -> (Int, Int)? {
        var i = index
        var value = 0
        var negative = false
        var digits = 0
        while i < end {
            let byte = buffer.getInteger(at: i, as: UInt8.self)!
            if byte == UInt8(ascii: "\r") {
                guard i + 1 < end else { return nil }
                guard buffer.getInteger(at: i + 1, as: UInt8.self) == UInt8(ascii: "\n"), digits > 0 else {
                    throw RESPProtocolError("invalid \(what)")
                }
                return (negative ? -value : value, i + 2)
            }
            if byte == UInt8(ascii: "-") && i == index {
                negative = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") && digits < 18 {
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            } else {
                throw RESPProtocolError("invalid \(what)")
            }
            i += 1
        }
        return nil
    }

    // MARK: Discarding a rejected request

    /// Drops bytes of a rejected request. true: done, parsing may resume.
    mutating func discardPending(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Bool {
        while var state = discard {
            if state.untilNewline {
                if let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                    buffer.moveReaderIndex(to: nl + 1)
                    discard = nil
                    return true
                }
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return false
            }
            if state.bytes > 0 {
                let n = min(state.bytes, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                state.bytes -= n
                discard = state
                if state.bytes > 0 { return false }
            }
            if state.elements == 0 {
                discard = nil
                return true
            }
            // Next element's header.
            guard let first = buffer.readableBytesView.first else { return false }
            guard first == UInt8(ascii: "$") else {
                discard = nil
                throw RESPProtocolError("expected '$', got '\(Self.printable(first))'")
            }
            guard let (length, after) = try readLength(buffer, at: buffer.readerIndex + 1, end: buffer.writerIndex, what: "bulk length") else {
                return false
            }
            guard length >= 0 else { throw RESPProtocolError("invalid bulk length") }
            buffer.moveReaderIndex(to: after)
            discard = Discard(bytes: length + 2, elements: state.elements - 1, untilNewline: false)
        }
        return true
    }

    // MARK: Inline

    mutating func parseInline(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Step {
        let view = buffer.readableBytesView
        guard let nl = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limits.maxInlineLength {
                if limits.overLimitIsFatal { throw RESPProtocolError("inline request too long before AUTH") }
                buffer.moveReaderIndex(to: buffer.writerIndex)
                discard = Discard(bytes: 0, elements: 0, untilNewline: true)
                return .request(.rejected(RESPRejection("inline request too long (more than \(limits.maxInlineLength) bytes)")))
            }
            return .needMore
        }
        var lineEnd = nl
        if lineEnd > view.startIndex && view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        if lineEnd - view.startIndex > limits.maxInlineLength {
            if limits.overLimitIsFatal { throw RESPProtocolError("inline request too long before AUTH") }
            buffer.moveReaderIndex(to: nl + 1)
            return .request(.rejected(RESPRejection("inline request too long (more than \(limits.maxInlineLength) bytes)")))
        }
        let line = view[view.startIndex..<lineEnd]
        buffer.moveReaderIndex(to: nl + 1)
        switch InlineSplitter.split(line) {
        case .failure(let rejection):
            return .request(.rejected(rejection))
        case .success(let args):
            if args.isEmpty { return .empty }
            return .request(.command(RESPCommand(args)))
        }
    }

    @usableFromInline
    static func printable(_ byte: UInt8) -> String {
        (0x20..<0x7f).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
}
