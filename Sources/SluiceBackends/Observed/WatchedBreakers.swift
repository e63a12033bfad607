import Logging
import Synchronization
import NIOCore
import SluiceDomain

/// Any ``Breakers`` implementation, with every state its answers carry recorded in
/// ``BreakerTransitions`` and each change logged (one line per transition). Decorates the
/// outermost implementation, so embedded, shared and Redis-down answers are all watched.
public final class WatchedBreakers: Breakers {
    public let inner: any Breakers
    public let transitions: BreakerTransitions
    let logger: Logger
    let wallClock: @Sendable () -> Int64

    public init(_ inner: any Breakers, transitions: BreakerTransitions = BreakerTransitions(), logger: Logger,
                wallClock: @escaping @Sendable () -> Int64) {
        self.inner = inner
        self.transitions = transitions
        self.logger = logger
        self.wallClock = wallClock
    }

    func watch(_ name: String, _ state: CircuitBreaker.State) {
        let now = wallClock()
        guard let change = transitions.observe(name, state, at: now) else { return }
        // At most ``maxLogLinesPerSecond`` lines a second (a client flipping CB.FORCE in a loop
        // must not flood the log); the count of the ones left out goes with the next line.
        let (allowed, suppressed) = logBudget.withLock { b -> (Bool, Int) in
            if now / 1000 != b.second { (b.second, b.lines) = (now / 1000, 0) }
            guard b.lines < Self.maxLogLinesPerSecond else {
                b.suppressed += 1
                return (false, 0)
            }
            b.lines += 1
            defer { b.suppressed = 0 }
            return (true, b.suppressed)
        }
        guard allowed else { return }
        let level: Logger.Level = change.to == .open ? .warning : .info
        var metadata: Logger.Metadata = [
            // Printable characters only: a client names breakers, and the text log is line-based.
            "breaker": "\(String(name.prefix(200).unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init)))",
            "from": "\(change.from.rawValue)", "to": "\(change.to.rawValue)",
        ]
        if suppressed > 0 { metadata["suppressed_before"] = "\(suppressed)" }
        logger.log(level: level, "breaker transition", metadata: metadata)
    }

    static let maxLogLinesPerSecond = 20
    let logBudget = Mutex<(second: Int64, lines: Int, suppressed: Int)>((0, 0, 0))

    public func allow(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Permission, BreakerError>> {
        inner.allow(name, now: now, on: eventLoop).map { [self] result in
            if case .success(let p) = result { watch(name, p.state) }
            return result
        }
    }

    public func report(_ name: String, ticket: UInt64, outcome: CircuitBreaker.Outcome, latency: Int64?, now: Int64,
                       on eventLoop: any EventLoop) -> Deferred<Result<BreakerReport, BreakerError>> {
        inner.report(name, ticket: ticket, outcome: outcome, latency: latency, now: now, on: eventLoop).map { [self] result in
            if case .success(let r) = result { watch(name, r.state) }
            return result
        }
    }

    public func state(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Snapshot, BreakerError>> {
        inner.state(name, now: now, on: eventLoop).map { [self] result in
            if case .success(let s) = result { watch(name, s.state) }
            return result
        }
    }

    public func force(_ name: String, _ pin: CircuitBreaker.Forced?, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Void, BreakerError>> {
        inner.force(name, pin, now: now, on: eventLoop).map { [self] result in
            if case .success = result, let pin { watch(name, pin == .open ? .open : .closed) }
            return result
        }
    }

    public func configure(_ name: String, _ change: BreakerPolicyChange, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<BreakerPolicy, BreakerError>> {
        inner.configure(name, change, now: now, on: eventLoop)
    }

    public func statistics(now: Int64) -> BreakerRegistry.Summary {
        inner.statistics(now: now)
    }
}
