import NIOCore
import SluiceProtocol
import Synchronization

/// A Lua script run by EVALSHA. It is loaded with SCRIPT LOAD when shared mode starts (and its
/// SHA kept from Redis's answer); when Redis answers NOSCRIPT (it restarted, or SCRIPT FLUSH)
/// the call is sent once more as EVAL, which loads it again.
public final class RedisScript: Sendable {
    public let name: String
    public let source: String
    let sha = Mutex<String?>(nil)

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    /// SCRIPT LOAD; succeeds with the SHA.
    @discardableResult
    public func load(_ client: RedisClient, on eventLoop: any EventLoop) -> EventLoopFuture<String> {
        // Every node of a cluster keeps its own script cache (a node missing it answers
        // NOSCRIPT, and the call is sent as EVAL: slower, still right).
        let sent = client.sendToEveryNode([ByteBuffer(string: "SCRIPT"), ByteBuffer(string: "LOAD"), ByteBuffer(string: source)], on: eventLoop)
        return EventLoopFuture.whenAllComplete(sent, on: eventLoop)
            .flatMapThrowing { results in
                guard let reply = results.compactMap({ try? $0.get() }).first(where: { if case .bulkString = $0 { return true }; return false }) else {
                    throw RedisError.unavailable("SCRIPT LOAD \(self.name): no node answered")
                }
                guard case .bulkString(let b?) = reply else { throw RedisError.unexpectedReply("SCRIPT LOAD \(self.name): \(reply)") }
                let sha = String(buffer: b)
                self.sha.withLock { $0 = sha }
                return sha
            }
    }

    public func run(_ client: RedisClient, keys: [ByteBuffer], arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let tail = [ByteBuffer(string: String(keys.count))] + keys + arguments
        let eval: @Sendable () -> EventLoopFuture<RESPValue> = {
            client.send([ByteBuffer(string: "EVAL"), ByteBuffer(string: self.source)] + tail, on: eventLoop)
        }
        guard let known = sha.withLock({ $0 }) else {
            // Not loaded yet (Redis was down at start-up): load it for next time, and run it now.
            _ = load(client, on: eventLoop)
            return eval()
        }
        return client.send([ByteBuffer(string: "EVALSHA"), ByteBuffer(string: known)] + tail, on: eventLoop).flatMap { reply in
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") { return eval() }
            return eventLoop.makeSucceededFuture(reply)
        }
    }
}
