import Logging
import NIOCore
import NIOPosix
import NIOEmbedded
import SluiceDomain
import SluiceServer
import Synchronization

/// Sequences of commands through the real dispatcher (command table, capabilities, state
/// machines), one connection, state carried from command to command within an input, time
/// moving between reads. The crashes worth finding need two or three steps (an entry stored
/// with a huge token count, then read twice).
///
/// Input: chunks of `[time step][length][bytes]`: the clock moves by step² ms (up to about a
/// minute), then `length` bytes arrive as one read (RESP or inline requests, as a client sends).
/// Checked after every input: no crash (ASan, overflow traps), the L1's books balance.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCommands(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let clock = FuzzClock()
    var configuration = ServerConfiguration()
    configuration.l1MaxMemory = 64 * 1024  // small: eviction happens
    configuration.semanticOffloadEntries = .max  // keep everything on this thread
    configuration.semanticVerifier = .wordnet  // the tokenizer and verifier see hostile prompts too
    configuration.allowFlush = true  // FLUSHDB mid-sequence, between writes and SCANs
    let server = MemoryOnlyServer(configuration: configuration, clock: clock, logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
                                  embedder: Embedder.shared, lanes: Embedder.lanes)
    defer { server.shutdown() }
    let channel = EmbeddedChannel(handler: server.makeConnectionHandler())
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    var i = 0
    while i + 2 <= bytes.count {
        let step = Int64(bytes[i])
        let length = Int(bytes[i + 1])
        i += 2
        let end = min(i + length, bytes.count)
        clock.advance(step * step)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(step * step))
        if end > i {
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes[i..<end]))
        }
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        i = end
        if !channel.isActive { break }
    }
    if let problem = server.invariantViolation() { fatalError("L1 books: \(problem)") }
    _ = try? channel.finish()
    // Timers still pending (an AUTH failure's delayed reply, a waiting RL.ACQUIRE) hold the channel and its handler
    // through the embedded loop, which, unlike a real one, never runs them by itself: run them,
    // or every such input leaks its whole server.
    // Both clocks move together, as during the input: a waiting RL.ACQUIRE's timer reads the
    // server's clock and would re-arm without end if only the loop's time moved.
    clock.advance(86_400_001)
    channel.embeddedEventLoop.advanceTime(by: .milliseconds(86_400_001))
    return 0
}

/// Both clocks, moved by the input.
final class FuzzClock: TimeSource {
    let wall = Atomic<Int64>(1_700_000_000_000)
    let monotonic = Atomic<Int64>(1_000_000)
    func nowMilliseconds() -> Int64 { wall.load(ordering: .relaxed) }
    func monotonicMilliseconds() -> Int64 { monotonic.load(ordering: .relaxed) }
    func advance(_ ms: Int64) {
        wall.add(ms, ordering: .relaxed)
        monotonic.add(ms, ordering: .relaxed)
    }
}

/// What every input shares: the built-in embedder (3.9 MB, loaded once) and a lane thread.
enum Embedder {
    static let shared = try? TokenEmbedder.builtIn()
    static let lanes: [NIOThreadPool] = {
        let lane = NIOThreadPool(numberOfThreads: 1)
        lane.start()
        return [lane]
    }()
}
