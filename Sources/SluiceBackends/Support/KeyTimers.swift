import NIOCore
import SluiceDomain

/// At most one timer per key, for the slot queues (``EmbeddedRateLimits``, ``RedisSlots``): a
/// key's queue needs a tick at its next event, and one timer per waiter would wake at every
/// event of the key (O(n²) for n waiters).
///
/// A timer is recorded, under its own id, *before* its task is scheduled: a task that fires at
/// once (its time has come, or its thread was slow to get back the lock) must find itself
/// recorded, or the key would keep a record of a timer that already ran and never arm another
/// (an attacker's stress run wedged keys so, their waiters never answered).
final class KeyTimers: Sendable {
    struct Timer {
        let at: Int64
        let id: UInt64
        var task: Scheduled<Void>?
    }

    struct State {
        var timers: [ByteBuffer: Timer] = [:]
        var nextID: UInt64 = 0
    }

    let state = Locked(State())

    typealias Schedule = @Sendable (_ eventLoop: any EventLoop, _ delay: TimeAmount, _ task: @escaping @Sendable () -> Void) -> Scheduled<Void>

    /// How a task is scheduled: on the event loop; tests may run it at once, as a busy machine
    /// may.
    let schedule: Schedule

    init(schedule: @escaping Schedule = { loop, delay, task in loop.scheduleTask(in: delay, task) }) {
        self.schedule = schedule
    }

    var count: Int { state.withLockedValue { $0.timers.count } }

    /// Makes sure `key` fires at `at` (monotonic ms; `now` is the time now): an earlier timer
    /// is kept, a later one replaced. `fire` runs on `eventLoop` with the timer's id and should
    /// start with ``claim(_:id:)``.
    func arm(_ key: ByteBuffer, at: Int64, now: Int64, on eventLoop: any EventLoop, fire: @escaping @Sendable (UInt64) -> Void) {
        let armed = state.withLockedValue { s -> (id: UInt64, replaced: Scheduled<Void>?)? in
            if let current = s.timers[key], current.at <= at { return nil }
            s.nextID &+= 1
            let replaced = s.timers[key]?.task
            s.timers[key] = Timer(at: at, id: s.nextID, task: nil)
            return (s.nextID, replaced)
        }
        guard let armed else { return }
        armed.replaced?.cancel()
        let id = armed.id
        let task = schedule(eventLoop, .milliseconds(max(at - now, 0) + 1)) { fire(id) }
        let kept = state.withLockedValue { s -> Bool in
            guard s.timers[key]?.id == id else { return false }  // fired already, or replaced
            s.timers[key]!.task = task
            return true
        }
        if !kept { task.cancel() }  // harmless if it ran
    }

    /// Timer `id` of `key` fired: true when it is still the key's (and so is removed), false
    /// when a newer one replaced it.
    func claim(_ key: ByteBuffer, id: UInt64) -> Bool {
        state.withLockedValue { s -> Bool in
            guard s.timers[key]?.id == id else { return false }
            s.timers[key] = nil
            return true
        }
    }

    func cancelAll() {
        let tasks = state.withLockedValue { s -> [Scheduled<Void>] in
            defer { s.timers = [:] }
            return s.timers.values.compactMap(\.task)
        }
        for t in tasks { t.cancel() }
    }
}
