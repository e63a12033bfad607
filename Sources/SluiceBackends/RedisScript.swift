import NIOCore
import SluiceProtocol
import Synchronization

/// A Lua script run by EVALSHA. Its SHA comes from Redis itself (SCRIPT LOAD on first use);
/// when Redis answers NOSCRIPT (it restarted, or SCRIPT FLUSH) the call is sent once more as
/// EVAL, which loads it again.
public final class RedisScript: Sendable {
    public let source: String
    let sha = Mutex<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    public func run(_ client: RedisClient, keys: [ByteBuffer], arguments: [ByteBuffer], on eventLoop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let tail = [ByteBuffer(string: String(keys.count))] + keys + arguments
        let eval: @Sendable () -> EventLoopFuture<RESPValue> = { client.send([ByteBuffer(string: "EVAL"), ByteBuffer(string: self.source)] + tail, on: eventLoop) }
        guard let known = sha.withLock({ $0 }) else {
            // First use: load it for next time, and run it now.
            _ = client.send([ByteBuffer(string: "SCRIPT"), ByteBuffer(string: "LOAD"), ByteBuffer(string: source)], on: eventLoop)
                .map { reply in if case .bulkString(let b?) = reply { self.sha.withLock { $0 = String(buffer: b) } } }
            return eval()
        }
        return client.send([ByteBuffer(string: "EVALSHA"), ByteBuffer(string: known)] + tail, on: eventLoop).flatMap { reply in
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") { return eval() }
            return eventLoop.makeSucceededFuture(reply)
        }
    }
}
