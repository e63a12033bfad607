import Logging
import NIOCore
import NIOPosix

/// Shared mode for the semantic cache: every SEM change goes into one Redis stream,
/// `sluice:sem:log`, and every instance follows it (from the start at start-up), so an entry
/// set through one instance is found through all. The stream keeps about the last million
/// changes (XADD MAXLEN ~).
public final class SharedSemanticLog: Sendable {
    public static let stream = "sluice:sem:log"
    let client: RedisClient
    let tail: RedisStreamTail

    public init(client: RedisClient, logger: Logger, apply: @escaping @Sendable (SemanticChange) -> Void) {
        self.client = client
        self.tail = RedisStreamTail(endpoint: client.endpoint, stream: Self.stream, logger: logger) { fields in
            if let change = Self.decode(fields) { apply(change) }
        }
    }

    public var isCaughtUp: Bool { tail.isCaughtUp }

    public func publish(_ change: SemanticChange) {
        var args = ["XADD", Self.stream, "MAXLEN", "~", "1000000", "*"].map { ByteBuffer(string: $0) }
        for (k, v) in Self.encode(change) { args += [ByteBuffer(string: k), v] }
        _ = client.send(args, on: MultiThreadedEventLoopGroup.singleton.any())
    }

    public func close() { tail.close() }

    static func encode(_ change: SemanticChange) -> [(String, ByteBuffer)] {
        switch change {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt):
            var blob = ByteBuffer()
            for x in vector { blob.writeInteger(x.bitPattern, endianness: .little) }
            return [("op", ByteBuffer(string: "set")), ("ns", ByteBuffer(string: ns)), ("scope", ByteBuffer(string: scope)),
                    ("prompt", ByteBuffer(string: prompt)), ("response", response), ("embedder", ByteBuffer(string: embedder)),
                    ("vector", blob), ("created", ByteBuffer(string: String(createdAt))), ("expires", ByteBuffer(string: String(expiresAt)))]
        case .delete(let ns, let scope, let prompt):
            return [("op", ByteBuffer(string: "del")), ("ns", ByteBuffer(string: ns)), ("scope", ByteBuffer(string: scope)),
                    ("prompt", ByteBuffer(string: prompt))]
        case .drop(let ns):
            return [("op", ByteBuffer(string: "drop")), ("ns", ByteBuffer(string: ns))]
        }
    }

    static func decode(_ f: [String: ByteBuffer]) -> SemanticChange? {
        func text(_ k: String) -> String? { f[k].map { String(buffer: $0) } }
        guard let op = text("op"), let ns = text("ns") else { return nil }
        switch op {
        case "set":
            guard let scope = text("scope"), let prompt = text("prompt"), let response = f["response"], let embedder = text("embedder"),
                  var blob = f["vector"], let created = text("created").flatMap({ Int64($0) }),
                  let expires = text("expires").flatMap({ Int64($0) }) else { return nil }
            var vector: [Float] = []
            while let bits = blob.readInteger(endianness: .little, as: UInt32.self) { vector.append(Float(bitPattern: bits)) }
            return .set(namespace: ns, scope: scope, prompt: prompt, response: response, embedder: embedder, vector: vector,
                        createdAt: created, expiresAt: expires)
        case "del":
            guard let scope = text("scope"), let prompt = text("prompt") else { return nil }
            return .delete(namespace: ns, scope: scope, prompt: prompt)
        case "drop":
            return .drop(namespace: ns)
        default:
            return nil
        }
    }
}
