import NIOCore

/// One client request: a RESP2 array of bulk strings, kept as the validated wire frame.
///
/// The frame is a slice of the connection's input buffer (no copy); arguments are read back
/// lazily with ``Arguments``, which re-reads the `$len` headers. That costs a few byte reads per
/// argument and saves an array allocation per request. Inline requests are re-encoded into this
/// form by the parser, so the rest of the server sees one representation.
public struct RESPCommand: Sendable, Equatable {
    /// `*N\r\n` followed by N `$len\r\n<bytes>\r\n` items, validated by the parser.
    public let frame: ByteBuffer
    /// Number of arguments, the verb included.
    public let count: Int

    @inlinable
    init(validatedFrame: ByteBuffer, count: Int) {
        self.frame = validatedFrame
        self.count = count
    }

    /// Builds a command from arguments (tests, the inline parser, clients).
    public init<S: Sequence>(_ arguments: S) where S.Element == ByteBuffer {
        var out = ByteBuffer()
        var n = 0
        var body = ByteBuffer()
        for var arg in arguments {
            body.writeRESPBulk(&arg)
            n += 1
        }
        out.writeRESPArrayHeader(n)
        out.writeBuffer(&body)
        self.init(validatedFrame: out, count: n)
    }

    public init(_ arguments: String...) {
        self.init(arguments.map { ByteBuffer(string: $0) })
    }

    /// The arguments in order, the verb first.
    @inlinable
    public var arguments: Arguments { Arguments(frame: frame) }

    /// Sequential reader over the frame's bulk strings; each element is a zero-copy slice.
    public struct Arguments: Sequence, IteratorProtocol, Sendable {
        @usableFromInline var frame: ByteBuffer

        @inlinable
        init(frame: ByteBuffer) {
            self.frame = frame
            // Skip the "*N\r\n" header.
            if let nl = frame.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                self.frame.moveReaderIndex(to: nl + 1)
            }
        }

        @inlinable
        public mutating func next() -> ByteBuffer? {
            guard frame.readableBytes > 0 else { return nil }
            // "$len\r\n" — the parser already checked the shape, so this only reads digits.
            var length = 0
            var index = frame.readerIndex + 1
            while let byte = frame.getInteger(at: index, as: UInt8.self), byte != UInt8(ascii: "\r") {
                length = length &* 10 &+ Int(byte &- UInt8(ascii: "0"))
                index += 1
            }
            let start = index + 2
            let slice = frame.getSlice(at: start, length: length)
            frame.moveReaderIndex(to: start + length + 2)
            return slice
        }

        /// Arguments not yet read.
        @inlinable
        public var isEmpty: Bool { frame.readableBytes == 0 }
    }
}
