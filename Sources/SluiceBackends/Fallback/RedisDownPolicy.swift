import Logging
import NIOCore
import Synchronization

/// What the Fallback* decorators share: the `--limits-when-redis-down` choice, the counts of
/// answers given without Redis, and the one place that turns a failed Redis answer into a
/// local one.
public final class RedisDownPolicy: Sendable {
    public enum Kind: Sendable {
        /// Exact and semantic cache.
        case cache
        /// Rate limits and breakers.
        case decision
    }

    public let limits: LimitsWhenRedisDown
    let logger: Logger
    let cacheFallbacks = Atomic<Int>(0)
    let decisionFallbacks = Atomic<Int>(0)

    public init(limits: LimitsWhenRedisDown, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Answers of the cache given without Redis.
    public var cacheFallbackCount: Int { cacheFallbacks.load(ordering: .relaxed) }
    /// Limit and breaker decisions made without Redis.
    public var decisionFallbackCount: Int { decisionFallbacks.load(ordering: .relaxed) }

    /// `primary`, or — when it fails — `fallback`'s answer, counted.
    @inlinable
    public func recover<T>(_ primary: Deferred<T>, _ kind: Kind, on eventLoop: any EventLoop,
                           _ fallback: @escaping @Sendable () -> Deferred<T>) -> Deferred<T> {
        guard case .later(let future) = primary else { return primary }
        return .later(future.flatMapError { [self] error in
            failed(kind, error)
            return fallback().future(on: eventLoop)
        })
    }

    @usableFromInline
    func failed(_ kind: Kind, _ error: any Error) {
        switch kind {
        case .cache: cacheFallbacks.add(1, ordering: .relaxed)
        case .decision: decisionFallbacks.add(1, ordering: .relaxed)
        }
        switch error as? RedisError {
        case .unavailable?, .connectionLost?, .shutDown?:
            break  // an outage: expected, counted
        default:
            // Not an outage (a script error, an odd reply): a bug; answer locally, but say so loudly.
            logger.error("shared-mode command failed; answered locally", metadata: ["error": "\(error)"])
        }
    }
}
