import NIOCore
import SluiceDomain

/// At most one timer per key, for the slot queues (``EmbeddedRateLimits``, ``RedisSlots``): a
/// key's queue needs a tick at its next event, and one timer per waiter would wake at every
/// event of the key (O(n²) for n waiters).
final class KeyTimers: Sendable {
    struct Timer {
        let at: Int64
        let task: Scheduled<Void>
    }

    let timers = Locked<[ByteBuffer: Timer]>([:])

    var count: Int { timers.withLockedValue { $0.count } }

    /// Makes sure `key` fires at `at` (monotonic ms; `now` is the time now): an earlier timer
    /// is kept, a later one replaced. The task is scheduled outside the lock; a timer that lost
    /// a race to a newer one finds itself replaced when it fires (``claim(_:at:)`` says so).
    /// `fire` runs on `eventLoop` and should start with ``claim(_:at:)``.
    func arm(_ key: ByteBuffer, at: Int64, now: Int64, on eventLoop: any EventLoop, fire: @escaping @Sendable () -> Void) {
        let needed = timers.withLockedValue { all -> Bool in
            if let current = all[key], current.at <= at { return false }
            return true
        }
        guard needed else { return }
        let task = eventLoop.scheduleTask(in: .milliseconds(max(at - now, 0) + 1), fire)
        let replaced = timers.withLockedValue { all -> Scheduled<Void>? in
            if let current = all[key], current.at <= at { return task }  // someone armed earlier meanwhile
            let old = all[key]?.task
            all[key] = Timer(at: at, task: task)
            return old
        }
        replaced?.cancel()
    }

    /// The timer armed for `key` at `at` fired: true when it is still the key's (and so is
    /// removed), false when a newer one replaced it.
    func claim(_ key: ByteBuffer, at: Int64) -> Bool {
        timers.withLockedValue { all -> Bool in
            guard let current = all[key], current.at == at else { return false }
            all[key] = nil
            return true
        }
    }

    func cancelAll() {
        for t in timers.withLockedValue({ all -> [Timer] in defer { all = [:] }; return Array(all.values) }) { t.task.cancel() }
    }
}
