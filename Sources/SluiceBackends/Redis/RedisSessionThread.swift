import CHiredis
import Foundation

/// A thread that keeps one dedicated Redis connection — for work that blocks on it, like a
/// pub/sub subscription or a blocking XREAD — and runs `session` on it until the connection
/// breaks, then reconnects (backoff 50 ms doubling to 1 s) and runs it again. `close()` shuts
/// the socket down, which unblocks a session waiting in a read, and waits for the thread.
final class RedisSessionThread: @unchecked Sendable {
    // @unchecked: `closed`, `fd` and `done` are guarded by `lock`.
    /// Where to connect, asked at every attempt (with its number): a cluster's session moves to
    /// another node when one fails.
    let endpoint: @Sendable (Int) -> RedisEndpoint
    let readTimeout: Duration?
    let lock = NSCondition()
    var closed = false
    var fd: Int32 = -1
    var done = false

    init(endpoint: @escaping @Sendable (Int) -> RedisEndpoint, readTimeout: Duration?) {
        self.endpoint = endpoint
        self.readTimeout = readTimeout
    }

    convenience init(endpoint: RedisEndpoint, readTimeout: Duration?) {
        self.init(endpoint: { _ in endpoint }, readTimeout: readTimeout)
    }

    /// Starts the thread. `session` returns when the connection broke (or `isClosed`).
    func start(name: String, session: @escaping @Sendable (UnsafeMutablePointer<redisContext>) -> Void) {
        let thread = Thread { [self] in run(session) }
        thread.name = name
        thread.start()
    }

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    func close() {
        lock.lock()
        closed = true
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }  // unblocks the session's read
        lock.broadcast()
        while !done { lock.wait() }
        lock.unlock()
    }

    func run(_ session: (UnsafeMutablePointer<redisContext>) -> Void) {
        var backoff = Duration.milliseconds(50)
        var attempt = 0
        while !isClosed {
            attempt &+= 1
            guard case .success(let c) = RedisConnection.open(endpoint(attempt), connectTimeout: .milliseconds(500), readTimeout: readTimeout) else {
                lock.lock()
                if !closed { _ = lock.wait(until: Date(timeIntervalSinceNow: backoff.seconds)) }
                lock.unlock()
                backoff = min(backoff * 2, .seconds(1))
                continue
            }
            backoff = .milliseconds(50)
            lock.lock()
            fd = c.pointee.fd
            let stop = closed
            lock.unlock()
            if !stop { session(c) }
            lock.lock()
            fd = -1
            lock.unlock()
            redisFree(c)
        }
        lock.lock()
        done = true
        lock.broadcast()
        lock.unlock()
    }
}
