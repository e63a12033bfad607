import DequeModule

/// A circuit breaker as a plain state machine; the caller passes `now`.
///
/// CLOSED → OPEN when, with at least `minimumCalls` outcomes in the window, the failure rate or
/// the slow-call rate reaches its threshold. OPEN → HALF_OPEN once `openMilliseconds` have
/// passed. HALF_OPEN lets `probes` calls through: one failure reopens, all succeeding closes.
/// Every transition starts a new *generation*; a ticket from `allow` carries it, and a report
/// with a ticket of an older generation is ignored, so late results from before a trip cannot
/// close (or re-trip) the breaker.
///
/// `Lua/breaker.lua` is the same machine for shared mode; `BreakerDifferentialTests` drive both
/// with the same operations and compare every decision. Every operation first lets time act
/// (``advance(now:)``), in both.
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: String, Sendable { case closed, open, halfOpen = "half_open" }
    public enum Forced: String, Sendable { case open, closed }
    public enum Outcome: Sendable { case success, failure }

    public private(set) var policy: BreakerPolicy
    public private(set) var state = State.closed
    public private(set) var generation: UInt64 = 1
    public private(set) var forced: Forced?
    /// The last `policy.window` outcomes in CLOSED, oldest first: bit 0 failure, bit 1 slow.
    var outcomes = Deque<UInt8>()
    var failures = 0
    var slowCalls = 0
    public private(set) var openedAt: Int64 = 0
    var halfOpenSince: Int64 = 0
    var probesIssued = 0
    var probesSucceeded = 0
    var ticketCounter: UInt64 = 0

    /// Tickets carry the generation above these bits and a counter below.
    public static let ticketCounterBits: UInt64 = 24

    public init(policy: BreakerPolicy = BreakerPolicy()) {
        self.policy = policy
    }

    public struct Permission: Sendable, Hashable {
        public var allowed: Bool
        public var state: State
        /// Bound to the generation it was issued in (upper 40 bits).
        public var ticket: UInt64?
        public var retryAfter: Int64

        public init(allowed: Bool, state: State, ticket: UInt64?, retryAfter: Int64) {
            self.allowed = allowed
            self.state = state
            self.ticket = ticket
            self.retryAfter = retryAfter
        }
    }

    public static func generation(of ticket: UInt64) -> UInt64 { ticket >> ticketCounterBits }

    /// May a call go to the upstream now?
    public mutating func allow(now: Int64) -> Permission {
        advance(now: now)
        switch forced {
        case .open: return Permission(allowed: false, state: .open, ticket: nil, retryAfter: -1)
        case .closed: return Permission(allowed: true, state: .closed, ticket: newTicket(), retryAfter: 0)
        case nil: break
        }
        switch state {
        case .closed:
            return Permission(allowed: true, state: state, ticket: newTicket(), retryAfter: 0)
        case .open:
            return Permission(allowed: false, state: state, ticket: nil, retryAfter: openedAt.addingSaturating(policy.openMilliseconds) - now)
        case .halfOpen:
            guard probesIssued < policy.probes else {
                // Probes are out; if they never report, new ones are allowed after another wait.
                return Permission(allowed: false, state: state, ticket: nil,
                                  retryAfter: max(halfOpenSince.addingSaturating(policy.openMilliseconds) - now, 1))
            }
            probesIssued += 1
            return Permission(allowed: true, state: state, ticket: newTicket(), retryAfter: 0)
        }
    }

    /// Records a call's result. false: ignored (ticket from an older generation, or forced).
    @discardableResult
    public mutating func report(ticket: UInt64, _ outcome: Outcome, latency: Int64?, now: Int64) -> Bool {
        advance(now: now)
        guard forced == nil, Self.generation(of: ticket) == generation else { return false }
        let slow = (latency ?? 0) > policy.slowCallMilliseconds
        switch state {
        case .closed:
            record(failure: outcome == .failure, slow: slow)
            if shouldTrip() { transition(to: .open, now: now) }
        case .halfOpen:
            if outcome == .failure || slow {
                transition(to: .open, now: now)
            } else {
                probesSucceeded += 1
                if probesSucceeded >= policy.probes { transition(to: .closed, now: now) }
            }
        case .open:
            return false  // cannot happen: an open breaker issues no tickets of its generation
        }
        return true
    }

    /// Pins a state (`nil` = automatic again, starting CLOSED).
    public mutating func force(_ pin: Forced?, now: Int64) {
        advance(now: now)
        forced = pin
        transition(to: pin == .open ? .open : .closed, now: now)
    }

    /// Changes thresholds; they apply at once (a smaller window forgets its oldest outcomes now).
    @discardableResult
    public mutating func configure(_ change: BreakerPolicyChange, now: Int64) -> BreakerPolicy {
        advance(now: now)
        policy.apply(change)
        while outcomes.count > policy.window { forgetOldest() }
        return policy
    }

    public struct Snapshot: Sendable, Hashable {
        public var state: State
        public var forced: Forced?
        public var calls: Int
        public var failures: Int
        public var slow: Int
        /// ms to the next automatic transition (OPEN → HALF_OPEN), else 0.
        public var nextTransition: Int64
        public var generation: UInt64
        public var probesIssued: Int

        public init(state: State, forced: Forced?, calls: Int, failures: Int, slow: Int, nextTransition: Int64,
                    generation: UInt64, probesIssued: Int) {
            self.state = state
            self.forced = forced
            self.calls = calls
            self.failures = failures
            self.slow = slow
            self.nextTransition = nextTransition
            self.generation = generation
            self.probesIssued = probesIssued
        }
    }

    public mutating func snapshot(now: Int64) -> Snapshot {
        advance(now: now)
        let wait = state == .open && forced == nil ? max(openedAt.addingSaturating(policy.openMilliseconds) - now, 0) : 0
        return Snapshot(state: forced.map { $0 == .open ? .open : .closed } ?? state, forced: forced,
                        calls: outcomes.count, failures: failures, slow: slowCalls, nextTransition: wait,
                        generation: generation, probesIssued: probesIssued)
    }

    // MARK: Internals

    /// Lets time act: OPEN → HALF_OPEN after the open time; lost probes replaced after it.
    mutating func advance(now: Int64) {
        guard forced == nil else { return }
        if state == .open && now >= openedAt.addingSaturating(policy.openMilliseconds) {
            transition(to: .halfOpen, now: now)
        } else if state == .halfOpen && probesIssued >= policy.probes && now >= halfOpenSince.addingSaturating(policy.openMilliseconds) {
            // Probes never reported: let new ones through.
            probesIssued = probesSucceeded
            halfOpenSince = now
        }
    }

    mutating func record(failure: Bool, slow: Bool) {
        outcomes.append((failure ? 1 : 0) | (slow ? 2 : 0))
        if failure { failures += 1 }
        if slow { slowCalls += 1 }
        while outcomes.count > policy.window { forgetOldest() }
    }

    mutating func forgetOldest() {
        guard let old = outcomes.popFirst() else { return }
        if old & 1 != 0 { failures -= 1 }
        if old & 2 != 0 { slowCalls -= 1 }
    }

    func shouldTrip() -> Bool {
        guard outcomes.count >= policy.minimumCalls, !outcomes.isEmpty else { return false }
        let n = Double(outcomes.count)
        return Double(failures) / n >= policy.failureRate || Double(slowCalls) / n >= policy.slowCallRate
    }

    mutating func transition(to newState: State, now: Int64) {
        state = newState
        generation &+= 1
        ticketCounter = 0
        outcomes.removeAll(keepingCapacity: true)
        failures = 0
        slowCalls = 0
        probesIssued = 0
        probesSucceeded = 0
        if newState == .open { openedAt = now }
        if newState == .halfOpen { halfOpenSince = now }
    }

    /// Counter 1, 2, ... 2²⁴−1, then 1 again: never 0, never into the generation's bits.
    mutating func newTicket() -> UInt64 {
        ticketCounter = ticketCounter % ((1 << Self.ticketCounterBits) - 1) + 1
        return generation << Self.ticketCounterBits | ticketCounter
    }
}
