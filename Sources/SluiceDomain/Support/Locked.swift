import NIOConcurrencyHelpers

/// The lock around state that request threads share (cache shards, the store's write queue,
/// breakers, limits' registries).
///
/// A plain pthread mutex (NIO's), not Synchronization's `Mutex`: on Linux that one is a
/// priority-inheritance futex that spins first, and with more event-loop threads than cores a
/// preempted holder left the others spinning and then queueing in the kernel's rt_mutex path —
/// SET with `--threads 8` on 2 cores fell from ~150k/s to ~21k/s (`perf`: 27% in
/// `_MutexHandle._lockSlow`, 16% in `rt_mutex_schedule`). It also lets ThreadSanitizer see the
/// lock, which it cannot with a bare futex.
public typealias Locked<Value> = NIOLockedValueBox<Value>

extension NIOLockedValueBox {
    /// `Mutex`'s spelling, so that call sites read the same whichever lock is behind them.
    @inlinable
    package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        try withLockedValue(body)
    }
}
