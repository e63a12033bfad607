import NIOConcurrencyHelpers
import Synchronization

// The lock around the store's write queue, which every event loop's writes and the writer thread
// take. Synchronization's `Mutex` spins before it sleeps, which measured ~10% more SET
// throughput under contention than a plain pthread mutex (`perf`: futex waits in
// EmbeddedExactCache.write). ThreadSanitizer cannot see that Mutex on Linux (a bare futex), so a
// TSan build (`-Xswiftc -DSLUICE_TSAN`, scripts/sanitizers.sh) uses NIO's pthread lock instead.
#if SLUICE_TSAN
typealias QueueLock<Value> = NIOLockedValueBox<Value>

extension NIOLockedValueBox {
    @inlinable
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try withLockedValue(body)
    }
}
#else
typealias QueueLock<Value> = Mutex<Value>
#endif
