/// Per-breaker thresholds. Defaults suit LLM upstreams, whose normal calls take seconds.
public struct BreakerPolicy: Sendable, Hashable {
    /// Outcomes remembered (count-based sliding window).
    public var window = 20
    /// No decision before this many outcomes are in the window.
    public var minimumCalls = 10
    /// Open when failures / calls in the window reach this.
    public var failureRate = 0.5
    /// A call slower than this counts as slow...
    public var slowCallMilliseconds: Int64 = 30_000
    /// ...and the breaker opens when slow calls / calls reach this (1.0 = only if all are slow).
    public var slowCallRate = 1.0
    /// How long OPEN refuses before letting probes through.
    public var openMilliseconds: Int64 = 30_000
    /// Probe calls allowed in HALF_OPEN.
    public var probes = 3

    public init() {}
}

/// A circuit breaker as a plain state machine; the caller passes `now`.
///
/// CLOSED → OPEN when, with at least `minimumCalls` outcomes in the window, the failure rate or
/// the slow-call rate reaches its threshold. OPEN → HALF_OPEN once `openMilliseconds` have
/// passed. HALF_OPEN lets `probes` calls through: one failure reopens, all succeeding closes.
/// Every transition starts a new *generation*; a ticket from `allow` carries it, and a report
/// with a ticket of an older generation is ignored, so late results from before a trip cannot
/// close (or re-trip) the breaker.
public struct CircuitBreaker: Sendable, Hashable {
    public enum State: String, Sendable { case closed, open, halfOpen = "half_open" }
    public enum Forced: String, Sendable { case open, closed }

    public var policy: BreakerPolicy
    public private(set) var state = State.closed
    public private(set) var generation: UInt64 = 1
    public private(set) var forced: Forced?
    /// Ring of outcomes in CLOSED: bit 0 failure, bit 1 slow.
    var outcomes: [UInt8] = []
    var next = 0
    public private(set) var openedAt: Int64 = 0
    var halfOpenSince: Int64 = 0
    var probesIssued = 0
    var probesSucceeded = 0
    var ticketCounter: UInt64 = 0

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

    public static func generation(of ticket: UInt64) -> UInt64 { ticket >> 24 }

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
            return Permission(allowed: false, state: state, ticket: nil, retryAfter: openedAt + policy.openMilliseconds - now)
        case .halfOpen:
            guard probesIssued < policy.probes else {
                // Probes are out; if they never report, new ones are allowed after another wait.
                return Permission(allowed: false, state: state, ticket: nil, retryAfter: max(halfOpenSince + policy.openMilliseconds - now, 1))
            }
            probesIssued += 1
            return Permission(allowed: true, state: state, ticket: newTicket(), retryAfter: 0)
        }
    }

    public enum Outcome: Sendable { case success, failure }

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
        forced = pin
        transition(to: pin == .open ? .open : .closed, now: now)
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
    }

    public mutating func snapshot(now: Int64) -> Snapshot {
        advance(now: now)
        let failures = outcomes.filter { $0 & 1 != 0 }.count
        let slow = outcomes.filter { $0 & 2 != 0 }.count
        let wait = state == .open && forced == nil ? max(openedAt + policy.openMilliseconds - now, 0) : 0
        return Snapshot(state: forced.map { $0 == .open ? .open : .closed } ?? state, forced: forced,
                        calls: outcomes.count, failures: failures, slow: slow, nextTransition: wait,
                        generation: generation, probesIssued: probesIssued)
    }

    // MARK: Internals

    mutating func advance(now: Int64) {
        guard forced == nil else { return }
        if state == .open && now >= openedAt + policy.openMilliseconds {
            transition(to: .halfOpen, now: now)
        } else if state == .halfOpen && probesIssued >= policy.probes && now >= halfOpenSince + policy.openMilliseconds {
            // Probes never reported: let new ones through.
            probesIssued = probesSucceeded
            halfOpenSince = now
        }
    }

    mutating func record(failure: Bool, slow: Bool) {
        let bits: UInt8 = (failure ? 1 : 0) | (slow ? 2 : 0)
        if outcomes.count < policy.window {
            outcomes.append(bits)
        } else {
            outcomes[next] = bits
            next = (next + 1) % policy.window
        }
    }

    func shouldTrip() -> Bool {
        guard outcomes.count >= policy.minimumCalls, !outcomes.isEmpty else { return false }
        let n = Double(outcomes.count)
        let failures = Double(outcomes.filter { $0 & 1 != 0 }.count)
        let slow = Double(outcomes.filter { $0 & 2 != 0 }.count)
        return failures / n >= policy.failureRate || slow / n >= policy.slowCallRate
    }

    mutating func transition(to newState: State, now: Int64) {
        state = newState
        generation += 1
        ticketCounter = 0
        outcomes.removeAll(keepingCapacity: true)
        next = 0
        probesIssued = 0
        probesSucceeded = 0
        if newState == .open { openedAt = now }
        if newState == .halfOpen { halfOpenSince = now }
    }

    mutating func newTicket() -> UInt64 {
        ticketCounter = (ticketCounter + 1) & 0xFF_FFFF
        return generation << 24 | ticketCounter
    }
}
