import NIOCore

/// One kind of request the load generator sends, and how it is written.
///
/// Keys are `prefix` + the rank as 12 zero-padded digits: the same keys as redis-benchmark's
/// `key:__rand_int__`, so a keyspace one fills is the keyspace the other reads.
public enum LoadCommand: String, CaseIterable, Sendable, Codable {
    case ping = "PING"
    case get = "GET"
    case set = "SET"
    case cacheGet = "CACHE.GET"
    case cacheSet = "CACHE.SET"
    case semGet = "SEM.GET"
    case semSet = "SEM.SET"
    case rlTake = "RL.TAKE"
    case cbAllow = "CB.ALLOW"
    /// The question is the key (`key:000000000042`), asked in `plan.namespace`.
    case llmGet = "LLM.GET"
    case llmSet = "LLM.SET"

    /// What a Redis server answers too (the rest are Sluice's own).
    public var redisSpeaksIt: Bool {
        switch self {
        case .ping, .get, .set: return true
        default: return false
        }
    }

    /// Parses `get`, `GET`, `cache.get` …
    public init?(name: Substring) {
        guard let match = Self.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(name) }) else { return nil }
        self = match
    }

    /// The request's bytes around the key's 12 digits, built once per run, so that a request costs
    /// three copies and no formatting. nil for requests whose text varies beyond the key (the
    /// semantic prompts), which go through ``write(rank:plan:value:into:)``.
    public struct Template: Sendable {
        public var head: ByteBuffer
        public var tail: ByteBuffer
        /// Whether the key's digits go between head and tail.
        public var hasKey = true
    }

    public func template(plan: LoadPlan, value: ByteBuffer) -> Template? {
        switch self {
        case .semGet, .semSet: return nil
        default: break
        }
        var whole = ByteBuffer()
        write(rank: 0, plan: plan, value: value, into: &whole)
        if self == .ping { return Template(head: whole, tail: ByteBuffer(), hasKey: false) }
        // The key is the only 12-digit run of zeros right after its prefix; split around it.
        let prefix = self == .rlTake ? "rl:" : self == .cbAllow ? "cb:" : plan.keyPrefix
        let marker = Array((prefix + String(repeating: "0", count: 12)).utf8)
        let bytes = Array(whole.readableBytesView)
        guard let start = (0...(bytes.count - marker.count)).first(where: { Array(bytes[$0..<$0 + marker.count]) == marker }) else { return nil }
        let digitsAt = start + prefix.utf8.count
        return Template(head: whole.getSlice(at: whole.readerIndex, length: digitsAt)!,
                        tail: whole.getSlice(at: whole.readerIndex + digitsAt + 12, length: bytes.count - digitsAt - 12)!)
    }

    /// Appends `rank` as 12 zero-padded digits.
    @inline(__always)
    public static func writeDigits(_ rank: Int, into buffer: inout ByteBuffer) {
        var digits: (UInt64, UInt64) = (0x3030_3030_3030_3030, 0x3030_3030_3030_3030)
        var n = rank
        withUnsafeMutableBytes(of: &digits) { raw in
            var i = 11
            while n > 0 && i >= 0 {
                raw[i] = UInt8(48 + n % 10)
                n /= 10
                i -= 1
            }
        }
        withUnsafeBytes(of: &digits) { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[0..<12])) }
    }

    /// Appends the request for rank `rank` to `buffer`.
    public func write(rank: Int, plan: LoadPlan, value: ByteBuffer, into buffer: inout ByteBuffer) {
        switch self {
        case .ping:
            buffer.writeStaticString("*1\r\n$4\r\nPING\r\n")
        case .get:
            Self.header(&buffer, count: 2, verb: "GET")
            Self.key(&buffer, plan.keyPrefix, rank)
        case .set:
            Self.header(&buffer, count: 3, verb: "SET")
            Self.key(&buffer, plan.keyPrefix, rank)
            Self.bulk(&buffer, value)
        case .cacheGet:
            if plan.leaseMilliseconds > 0 {
                Self.header(&buffer, count: 4, verb: "CACHE.GET")
                Self.key(&buffer, plan.keyPrefix, rank)
                Self.bulk(&buffer, "LEASE")
                Self.bulk(&buffer, String(plan.leaseMilliseconds))
            } else {
                Self.header(&buffer, count: 2, verb: "CACHE.GET")
                Self.key(&buffer, plan.keyPrefix, rank)
            }
        case .cacheSet:
            Self.header(&buffer, count: 3, verb: "CACHE.SET")
            Self.key(&buffer, plan.keyPrefix, rank)
            Self.bulk(&buffer, value)
        case .semGet:
            Self.header(&buffer, count: 3, verb: "SEM.GET")
            Self.bulk(&buffer, plan.namespace)
            Self.bulk(&buffer, Self.prompt(rank))
        case .semSet:
            Self.header(&buffer, count: 4, verb: "SEM.SET")
            Self.bulk(&buffer, plan.namespace)
            Self.bulk(&buffer, Self.prompt(rank))
            Self.bulk(&buffer, value)
        case .rlTake:
            Self.header(&buffer, count: 6, verb: "RL.TAKE")
            Self.key(&buffer, "rl:", rank)
            Self.bulk(&buffer, String(plan.limitRequestsPerMinute))
            Self.bulk(&buffer, String(plan.limitTokensPerMinute))
            Self.bulk(&buffer, "TOKENS")
            Self.bulk(&buffer, "1")
        case .cbAllow:
            Self.header(&buffer, count: 2, verb: "CB.ALLOW")
            Self.key(&buffer, "cb:", rank)
        case .llmGet:
            Self.header(&buffer, count: 3, verb: "LLM.GET")
            Self.bulk(&buffer, plan.namespace)
            Self.key(&buffer, plan.keyPrefix, rank)
        case .llmSet:
            Self.header(&buffer, count: 4, verb: "LLM.SET")
            Self.bulk(&buffer, plan.namespace)
            Self.key(&buffer, plan.keyPrefix, rank)
            Self.bulk(&buffer, value)
        }
    }

    static func header(_ buffer: inout ByteBuffer, count: Int, verb: String) {
        buffer.writeString("*\(count)\r\n")
        bulk(&buffer, verb)
    }

    static func bulk(_ buffer: inout ByteBuffer, _ text: String) {
        buffer.writeString("$\(text.utf8.count)\r\n")
        buffer.writeString(text)
        buffer.writeStaticString("\r\n")
    }

    static func bulk(_ buffer: inout ByteBuffer, _ bytes: ByteBuffer) {
        buffer.writeString("$\(bytes.readableBytes)\r\n")
        buffer.writeImmutableBuffer(bytes)
        buffer.writeStaticString("\r\n")
    }

    /// `prefix` + rank in 12 zero-padded digits, as one bulk string.
    static func key(_ buffer: inout ByteBuffer, _ prefix: String, _ rank: Int) {
        buffer.writeString("$\(prefix.utf8.count + 12)\r\n")
        buffer.writeString(prefix)
        writeDigits(rank, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// A question per rank, phrased as users do, so the semantic layer has text to embed.
    static func prompt(_ rank: Int) -> String {
        let subjects = ["my order", "the invoice", "a refund", "my password", "the subscription", "two-factor login",
                        "the API key", "a shipping address"]
        let verbs = ["How do I check", "How can I change", "Where do I find", "What happens to", "Why can't I see"]
        return "\(verbs[rank % verbs.count]) \(subjects[(rank / verbs.count) % subjects.count]) number \(rank)?"
    }
}

extension String {
    func caseInsensitiveCompare(_ other: Substring) -> Bool {
        lowercased() == other.lowercased()
    }
}
