import NIOCore
import SluiceDomain

/// This process's circuit breakers: the domain's ``BreakerRegistry``, answered at once.
public final class EmbeddedBreakers: Breakers {
    public let registry: BreakerRegistry

    public init(registry: BreakerRegistry) {
        self.registry = registry
    }

    func with<R>(_ name: String, _ body: (inout CircuitBreaker) -> R) -> Deferred<Result<R, BreakerError>> {
        guard let r = registry.with(name, body) else { return .ready(.failure(.tooManyBreakers(limit: registry.maxBreakers))) }
        return .ready(.success(r))
    }

    public func allow(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Permission, BreakerError>> {
        with(name) { $0.allow(now: now) }
    }

    public func report(_ name: String, ticket: UInt64, outcome: CircuitBreaker.Outcome, latency: Int64?, now: Int64,
                       on eventLoop: any EventLoop) -> Deferred<Result<BreakerReport, BreakerError>> {
        with(name) { b in
            let counted = b.report(ticket: ticket, outcome, latency: latency, now: now)
            return BreakerReport(counted: counted, state: b.snapshot(now: now).state)
        }
    }

    public func state(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Snapshot, BreakerError>> {
        with(name) { $0.snapshot(now: now) }
    }

    public func force(_ name: String, _ pin: CircuitBreaker.Forced?, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Void, BreakerError>> {
        with(name) { $0.force(pin, now: now) }
    }

    public func configure(_ name: String, _ change: BreakerPolicyChange, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<BreakerPolicy, BreakerError>> {
        with(name) { $0.configure(change, now: now) }
    }

    public func statistics(now: Int64) -> BreakerRegistry.Summary {
        registry.summary(now: now)
    }
}
