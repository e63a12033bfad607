import Synchronization
import SluiceDomain

/// The breaker states this instance has seen, from the answers of the breakers it asks, and
/// each change between them: the transitions that metrics count, the log reports and the
/// dashboard shows. In shared mode the states come from Redis (every instance sees a
/// transition when it next asks that breaker).
///
/// Bounded: past ``maxNames`` breakers a new one is not followed (its transitions count under
/// "other").
public final class BreakerTransitions: Sendable {
    public static let maxNames = 10_000

    public struct Seen: Sendable, Hashable {
        public var state: CircuitBreaker.State
        /// Wall-clock ms of the last change (0: none seen).
        public var changedAt: Int64
        public var transitions: Int
    }

    public struct Change: Sendable, Hashable {
        public var name: String
        public var from: CircuitBreaker.State
        public var to: CircuitBreaker.State
    }

    let seen = Mutex<[String: Seen]>([:])
    /// Transitions of breakers past the bound.
    let untracked = Atomic<Int>(0)

    public init() {}

    /// Records `state` as the breaker's; the change, if it is one. A breaker seen for the first
    /// time in a state other than closed counts as a change from closed (it opened somewhere
    /// this instance did not see).
    public func observe(_ name: String, _ state: CircuitBreaker.State, at wallMilliseconds: Int64) -> Change? {
        seen.withLock { all -> Change? in
            if var s = all[name] {
                guard s.state != state else { return nil }
                let change = Change(name: name, from: s.state, to: state)
                s.state = state
                s.changedAt = wallMilliseconds
                s.transitions += 1
                all[name] = s
                return change
            }
            guard all.count < Self.maxNames else {
                if state != .closed { untracked.add(1, ordering: .relaxed) }
                return nil
            }
            let changed = state != .closed
            all[name] = Seen(state: state, changedAt: changed ? wallMilliseconds : 0, transitions: changed ? 1 : 0)
            return changed ? Change(name: name, from: .closed, to: state) : nil
        }
    }

    public var snapshot: [String: Seen] { seen.withLock { $0 } }
    public var untrackedTransitions: Int { untracked.load(ordering: .relaxed) }
}
