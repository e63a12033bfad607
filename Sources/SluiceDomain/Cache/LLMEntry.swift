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

    /// The key from the request's own bytes, in a buffer of exactly its length.
    public static func key(namespace: ByteBuffer, scope: ByteBuffer?, prompt: ByteBuffer) -> ByteBuffer {
        let length = keyLength(namespace: namespace.readableBytes, scope: scope?.readableBytes ?? 0, prompt: prompt.readableBytes)
        var b = ByteBufferAllocator().buffer(capacity: length)
        namespace.withUnsafeReadableBytes { namespace in
            prompt.withUnsafeReadableBytes { prompt in
                func write(_ scope: UnsafeRawBufferPointer?) {
                    b.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { writeKey(namespace: namespace, scope: scope, prompt: prompt, into: $0) }
                }
                if let scope { scope.withUnsafeReadableBytes { write($0) } } else { write(nil) }
            }
        }
        return b
    }

    /// The key's exact length, from the parts' lengths (nothing built): what LLM.GET and LLM.SET
    /// check against the request limit and reserve.
    @inlinable
    public static func keyLength(namespace: Int, scope: Int, prompt: Int) -> Int {
        4 + digits(namespace) + 1 + namespace + 1 + digits(scope) + 1 + scope + 1 + prompt
    }

    /// Decimal digits of a length (at least 1).
    @inlinable
    static func digits(_ n: Int) -> Int {
        var d = 1, rest = n
        while rest >= 10 {
            rest /= 10
            d += 1
        }
        return d
    }

    /// Writes the key at the start of `out` (at least ``keyLength(namespace:scope:prompt:)``
    /// bytes, checked); how many bytes it took. LLM.GET builds it from the request frame into
    /// a buffer it reuses.
    @inlinable
    public static func writeKey(namespace: UnsafeRawBufferPointer, scope: UnsafeRawBufferPointer?, prompt: UnsafeRawBufferPointer,
                                into out: UnsafeMutableRawBufferPointer) -> Int {
        precondition(out.count >= keyLength(namespace: namespace.count, scope: scope?.count ?? 0, prompt: prompt.count),
                     "LLMEntry.writeKey: too little room")
        var at = 0
        func put(_ byte: UInt8) {
            out[at] = byte
            at += 1
        }
        func put(_ raw: UnsafeRawBufferPointer) {
            if raw.count > 0 { (out.baseAddress! + at).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
            at += raw.count
        }
        func putLength(_ n: Int) {
            var rest = n, i = at + digits(n)
            at = i
            repeat {
                i -= 1
                out[i] = UInt8(truncatingIfNeeded: rest % 10) &+ 0x30
                rest /= 10
            } while rest > 0
            put(UInt8(ascii: ":"))
        }
        put(UInt8(ascii: "l"))
        put(UInt8(ascii: "l"))
        put(UInt8(ascii: "m"))
        put(UInt8(ascii: ":"))
        putLength(namespace.count)
        put(namespace)
        put(UInt8(ascii: ":"))
        putLength(scope?.count ?? 0)
        if let scope { put(scope) }
        put(UInt8(ascii: ":"))
        put(prompt)
        return at
    }

    /// Where the answer starts in an entry stored by LLM.SET (or in a value something else
    /// wrote: 0); nil for a written-back copy, whose source must be checked first.
    @inlinable
    public static func directAnswerOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 5, bytes[0] == 0x53, bytes[1] == 0x4C, bytes[2] == 0x4D, bytes[3] == 0x31 else { return 0 }
        switch bytes[4] {
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
