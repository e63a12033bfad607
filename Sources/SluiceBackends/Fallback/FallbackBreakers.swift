import NIOCore
import SluiceDomain

/// The breakers' Redis-down policy, around ``RedisBreakers``: while Redis cannot answer, this
/// instance's own breakers decide (counted in `rl_fallbacks`).
public final class FallbackBreakers: Breakers {
    public let primary: any Breakers
    let local: EmbeddedBreakers
    let policy: RedisDownPolicy

    public init(primary: any Breakers, local: EmbeddedBreakers, policy: RedisDownPolicy) {
        self.primary = primary
        self.local = local
        self.policy = policy
    }

    public func allow(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Permission, BreakerError>> {
        policy.recover(primary.allow(name, now: now, on: eventLoop), .decision, on: eventLoop) { [local] _ in
            local.allow(name, now: now, on: eventLoop)
        }
    }

    public func report(_ name: String, ticket: UInt64, outcome: CircuitBreaker.Outcome, latency: Int64?, now: Int64,
                       on eventLoop: any EventLoop) -> Deferred<Result<BreakerReport, BreakerError>> {
        policy.recover(primary.report(name, ticket: ticket, outcome: outcome, latency: latency, now: now, on: eventLoop), .decision, on: eventLoop) { [local] _ in
            local.report(name, ticket: ticket, outcome: outcome, latency: latency, now: now, on: eventLoop)
        }
    }

    public func state(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Snapshot, BreakerError>> {
        policy.recover(primary.state(name, now: now, on: eventLoop), .decision, on: eventLoop) { [local] _ in
            local.state(name, now: now, on: eventLoop)
        }
    }

    public func force(_ name: String, _ pin: CircuitBreaker.Forced?, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Void, BreakerError>> {
        policy.recover(primary.force(name, pin, now: now, on: eventLoop), .decision, on: eventLoop) { [local] _ in
            local.force(name, pin, now: now, on: eventLoop)
        }
    }

    public func configure(_ name: String, _ change: BreakerPolicyChange, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<BreakerPolicy, BreakerError>> {
        policy.recover(primary.configure(name, change, now: now, on: eventLoop), .decision, on: eventLoop) { [local] _ in
            local.configure(name, change, now: now, on: eventLoop)
        }
    }

    public func statistics(now: Int64) -> BreakerRegistry.Summary {
        primary.statistics(now: now)
    }
}
