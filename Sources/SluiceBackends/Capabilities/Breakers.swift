import NIOCore
import SluiceDomain

/// Circuit breakers per upstream name: the CB.* commands are written once against this.
///
/// Implementations: ``EmbeddedBreakers`` (this process's), ``RedisBreakers`` (one breaker per
/// name for every instance, every transition in `Lua/breaker.lua`) and ``FallbackBreakers``,
/// which lets this process's breakers decide while Redis is down.
public protocol Breakers: Sendable {
    func allow(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Permission, BreakerError>>

    func report(_ name: String, ticket: UInt64, outcome: CircuitBreaker.Outcome, latency: Int64?, now: Int64,
                on eventLoop: any EventLoop) -> Deferred<Result<BreakerReport, BreakerError>>

    func state(_ name: String, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<CircuitBreaker.Snapshot, BreakerError>>

    /// Pins a state; nil = automatic again.
    func force(_ name: String, _ pin: CircuitBreaker.Forced?, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Void, BreakerError>>

    /// Changes thresholds; answers the policy in force.
    func configure(_ name: String, _ change: BreakerPolicyChange, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<BreakerPolicy, BreakerError>>

    /// This process's breakers (in shared mode, the ones it used while Redis was down).
    func statistics(now: Int64) -> BreakerRegistry.Summary
}
