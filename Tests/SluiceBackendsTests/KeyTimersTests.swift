import NIOCore
import NIOEmbedded
import SluiceDomain
import Testing
@testable import SluiceBackends

/// The per-key slot timers: one per key, an earlier one wins, and a task that fires before
/// `arm` has finished (a busy machine) still leaves the key free for the next timer.
@Suite("Key timers")
struct KeyTimersTests {
    let key = ByteBuffer(string: "pool")

    @Test func aTimerThatFiresAtOnceDoesNotWedgeTheKey() {
        let loop = EmbeddedEventLoop()
        // Runs every task the moment it is scheduled, before `arm` records it.
        let timers = KeyTimers(schedule: { loop, delay, task in
            task()
            return loop.scheduleTask(in: delay) {}
        })
        let fired = Locked(0)
        for _ in 0..<3 {
            timers.arm(key, at: 10, now: 0, on: loop) { id in
                if timers.claim(key, id: id) { fired.withLockedValue { $0 += 1 } }
            }
        }
        // Each fired and claimed its own record; none is left to block the next.
        #expect(fired.withLockedValue { $0 } == 3)
        #expect(timers.count == 0)
    }

    @Test func anEarlierTimerReplacesALaterOneAndALaterOneIsIgnored() {
        let loop = EmbeddedEventLoop()
        let timers = KeyTimers()
        let fired = Locked<[Int64]>([])
        func arm(_ at: Int64) {
            timers.arm(key, at: at, now: 0, on: loop) { id in
                if timers.claim(key, id: id) { fired.withLockedValue { $0.append(at) } }
            }
        }
        arm(100)
        arm(50)   // replaces 100
        arm(70)   // later than 50: ignored
        #expect(timers.count == 1)
        loop.advanceTime(by: .milliseconds(200))
        #expect(fired.withLockedValue { $0 } == [50])
        #expect(timers.count == 0)
        arm(300)  // the key is free again
        loop.advanceTime(by: .milliseconds(400))
        #expect(fired.withLockedValue { $0 } == [50, 300])
    }
}
