import NIOCore
import Synchronization

/// What is left of a run, shared by its connections: each claims its next batch here, so that
/// the run stops at exactly `requests` (or at the deadline) whatever the number of connections.
final class LoadBudget: Sendable {
    let remaining: Atomic<Int>
    let deadline: NIODeadline?
    /// Ranks handed out in order (prefill writes every key once).
    let nextRank = Atomic<Int>(0)
    /// Replies received so far, for the progress line.
    let completed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)

    init(requests: Int?, seconds: Double?, startingAt start: NIODeadline) {
        remaining = Atomic(requests ?? Int.max)
        deadline = seconds.map { start + .nanoseconds(Int64($0 * 1e9)) }
    }

    /// Ends the run at every connection's next batch.
    func cancel() { remaining.store(0, ordering: .relaxed) }

    /// Up to `wanted` requests to send now; 0 when the run is over.
    func claim(_ wanted: Int, now: NIODeadline) -> Int {
        if let deadline, now >= deadline { return 0 }
        while true {
            let left = remaining.load(ordering: .relaxed)
            if left <= 0 { return 0 }
            let take = min(left, wanted)
            if remaining.compareExchange(expected: left, desired: left - take, ordering: .relaxed).exchanged { return take }
        }
    }
}
