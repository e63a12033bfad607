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
            guard let span = peekSpan() else { return nil }
            // Sliced before the reader index passes it (a slice is taken from the readable bytes).
            let slice = frame.getSlice(at: span.lowerBound, length: span.count)
            frame.moveReaderIndex(to: span.upperBound &+ 2)
            return slice
        }

        /// Where the next argument's bytes are in ``frame`` (its storage's own indices), without
        /// a slice: a hot path that only reads the bytes (``withFrameBytes(_:)``) pays no
        /// reference counting for them.
        @inlinable
        public mutating func nextSpan() -> Range<Int>? {
            guard let span = peekSpan() else { return nil }
            frame.moveReaderIndex(to: span.upperBound &+ 2)
            return span
        }

        /// The next argument's span, not yet read past.
        @inlinable
        func peekSpan() -> Range<Int>? {
            guard frame.readableBytes > 0 else { return nil }
            // "$len\r\n" — the parser already checked the shape, so this only reads digits.
            let (start, length) = frame.withUnsafeReadableBytes { raw -> (Int, Int) in
                var length = 0, i = 1
                while i < raw.count, raw[i] != UInt8(ascii: "\r") {
                    length = length &* 10 &+ Int(raw[i] &- UInt8(ascii: "0"))
                    i &+= 1
                }
                return (i &+ 2, length)
            }
            let at = frame.readerIndex &+ start
            return at ..< at &+ length
        }

        /// The frame's bytes from index 0 to its end, for spans from ``nextSpan()`` (bounded by
        /// what was written: a wrong span traps rather than reading the storage's spare room).
        @inlinable
        public func withFrameBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            let end = frame.writerIndex
            return try frame.withVeryUnsafeBytes { all in
                precondition(end <= all.count)
                return try body(UnsafeRawBufferPointer(start: all.baseAddress, count: end))
            }
        }

        /// A span's bytes as a slice of the frame (one already read past too).
        @inlinable
        public func slice(_ span: Range<Int>) -> ByteBuffer {
            var whole = frame
            whole.moveReaderIndex(to: 0)
            return whole.getSlice(at: span.lowerBound, length: span.count)!
        }

        /// Arguments not yet read.
        @inlinable
        public var isEmpty: Bool { frame.readableBytes == 0 }
    }
}
