import NIOCore

/// What LLM.SET and LLM.GET keep in the exact cache for one question: the answer, and — for a
/// copy written back after a semantic hit ("backfill") — which semantic entry answered, at what
/// score, so that the copy can be checked against that entry later (a `SEM.FEEDBACK ... bad`
/// that raised the entry's threshold above the score, or a newer answer, retires it).
///
/// Key (``key(namespace:scope:prompt:)``): `llm:<ns length>:<ns>:<scope length>:<scope>:<prompt>`
/// — the prompt itself, so two prompts never share a key (no hash to collide), readable in
/// redis-cli, and the lengths keep `a:b` + `c` apart from `a` + `b:c`.
///
/// Value: `SLM1`, one byte origin (0 LLM.SET, 1 backfill), then for a backfill the score
/// (f32), the entry's created-at (i64) and its prompt (u32 length + bytes); then the answer.
public struct LLMEntry: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        /// The semantic entry's prompt and version.
        public var prompt: String
        public var createdAt: Int64
        /// The query's score against it when it answered.
        public var score: Float

        public init(prompt: String, createdAt: Int64, score: Float) {
            self.prompt = prompt
            self.createdAt = createdAt
            self.score = score
        }
    }

    public var answer: ByteBuffer
    /// nil: stored by LLM.SET for this very prompt.
    public var source: Source?

    public init(answer: ByteBuffer, source: Source? = nil) {
        self.answer = answer
        self.source = source
    }

    static let magic: [UInt8] = Array("SLM1".utf8)

    public static func key(namespace: String, scope: String, prompt: String) -> ByteBuffer {
        key(namespace: ByteBuffer(string: namespace), scope: ByteBuffer(string: scope), prompt: ByteBuffer(string: prompt))
    }

    /// The key from the request's own bytes (no String on LLM.GET's hit path).
    @inlinable
    public static func key(namespace: ByteBuffer, scope: ByteBuffer, prompt: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(16 + namespace.readableBytes + scope.readableBytes + prompt.readableBytes)
        b.writeStaticString("llm:")
        writeLength(namespace.readableBytes, into: &b)
        b.writeImmutableBuffer(namespace)
        b.writeInteger(UInt8(ascii: ":"))
        writeLength(scope.readableBytes, into: &b)
        b.writeImmutableBuffer(scope)
        b.writeInteger(UInt8(ascii: ":"))
        b.writeImmutableBuffer(prompt)
        return b
    }

    /// `n:` in ASCII decimal.
    @inlinable
    static func writeLength(_ n: Int, into b: inout ByteBuffer) {
        var divisor = 1
        while divisor <= n / 10 { divisor *= 10 }
        var rest = n
        repeat {
            b.writeInteger(UInt8(truncatingIfNeeded: rest / divisor) &+ 0x30)
            rest %= divisor
            divisor /= 10
        } while divisor > 0
        b.writeInteger(UInt8(ascii: ":"))
    }

    /// Where the answer starts in an entry stored by LLM.SET (or in a value something else
    /// wrote: 0); nil for a written-back copy, whose source must be checked first.
    @inlinable
    public static func directAnswerOffset(_ bytes: ArraySlice<UInt8>) -> Int? {
        let i = bytes.startIndex
        guard bytes.count >= 5, bytes[i] == 0x53, bytes[i + 1] == 0x4C, bytes[i + 2] == 0x4D, bytes[i + 3] == 0x31 else { return 0 }
        switch bytes[i + 4] {
        case 0: return 5
        case 1: return nil
        default: return 0
        }
    }

    public func encoded() -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(5 + answer.readableBytes + (source.map { 16 + $0.prompt.utf8.count } ?? 0))
        b.writeBytes(Self.magic)
        if let source {
            b.writeInteger(UInt8(1))
            b.writeInteger(source.score.bitPattern)
            b.writeInteger(source.createdAt)
            b.writeInteger(UInt32(source.prompt.utf8.count))
            b.writeString(source.prompt)
        } else {
            b.writeInteger(UInt8(0))
        }
        b.writeImmutableBuffer(answer)
        return b
    }

    /// The entry in `bytes`; a value that is not one (written under an `llm:` key by something
    /// else) is served as the answer itself.
    public static func decode<C: Collection>(_ bytes: C) -> LLMEntry where C.Element == UInt8 {
        var b = ByteBuffer(bytes: bytes)
        guard let head = b.readBytes(length: 4), head == magic, let origin = b.readInteger(as: UInt8.self) else {
            return LLMEntry(answer: ByteBuffer(bytes: bytes))
        }
        if origin == 0 { return LLMEntry(answer: b) }
        guard origin == 1 else { return LLMEntry(answer: ByteBuffer(bytes: bytes)) }
        guard let bits = b.readInteger(as: UInt32.self), let createdAt = b.readInteger(as: Int64.self),
              let length = b.readInteger(as: UInt32.self), let prompt = b.readString(length: Int(length)) else {
            return LLMEntry(answer: ByteBuffer(bytes: bytes))
        }
        return LLMEntry(answer: b, source: Source(prompt: prompt, createdAt: createdAt, score: Float(bitPattern: bits)))
    }
}
