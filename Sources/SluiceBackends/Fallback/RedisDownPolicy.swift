import Dispatch
import Logging
import NIOCore
import SluiceDomain
import Synchronization

/// What the Fallback* decorators share: the `--limits-when-redis-down` choice, the counts of
/// answers given without Redis, the one place that turns a failed Redis answer into a local
/// one, and a log that says so without flooding.
public final class RedisDownPolicy: Sendable {
    public enum Kind: Sendable {
        /// Exact cache.
        case cache
        /// Semantic cache.
        case semantic
        /// Rate limits and breakers.
        case decision
    }

    public let limits: LimitsWhenRedisDown
    let logger: Logger
    let cacheFallbacks = Atomic<Int>(0)
    let semanticFallbacks = Atomic<Int>(0)
    let decisionFallbacks = Atomic<Int>(0)
    /// When the last failure was logged (monotonic seconds), so a long outage logs once in a while.
    let lastLogged = Atomic<Int64>(0)
    let unloggedFailures = Atomic<Int>(0)

    public init(limits: LimitsWhenRedisDown, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Answers of the exact cache given without Redis (reads from L1, writes refused).
    public var cacheFallbackCount: Int { cacheFallbacks.load(ordering: .relaxed) }
    /// Answers of the semantic cache given without Redis.
    public var semanticFallbackCount: Int { semanticFallbacks.load(ordering: .relaxed) }
    /// Limit and breaker decisions made without Redis.
    public var decisionFallbackCount: Int { decisionFallbacks.load(ordering: .relaxed) }

    /// `primary`, or — when it fails — `fallback`'s answer to the error, counted.
    @inlinable
    public func recover<T>(_ primary: Deferred<T>, _ kind: Kind, on eventLoop: any EventLoop,
                           _ fallback: @escaping @Sendable (any Error) -> Deferred<T>) -> Deferred<T> {
        guard case .later(let future) = primary else { return primary }
        return .later(future.flatMapError { [self] error in
            failed(kind, error)
            return fallback(error).future(on: eventLoop)
        })
    }

    /// How a client is told that a write did not reach Redis.
    public static func storeFailure(_ error: any Error) -> StoreFailure {
        switch error as? RedisError {
        case .errorReply(let message)?: return .refused(message)
        case .connectionLost(let reason)?: return .unconfirmed(reason)
        case let e? where e.isOutage: return .unavailable("\(e)")
        default: return .refused("\(error)")
        }
    }

    @usableFromInline
    func failed(_ kind: Kind, _ error: any Error) {
        switch kind {
        case .cache: cacheFallbacks.add(1, ordering: .relaxed)
        case .semantic: semanticFallbacks.add(1, ordering: .relaxed)
        case .decision: decisionFallbacks.add(1, ordering: .relaxed)
        }
        // At most one line per 10 s, with the count of the failures it stands for.
        let now = Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000_000)
        let last = lastLogged.load(ordering: .relaxed)
        guard now - last >= 10 || last == 0, lastLogged.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else {
            unloggedFailures.add(1, ordering: .relaxed)
            return
        }
        let alike = unloggedFailures.exchange(0, ordering: .relaxed)
        let outage = (error as? RedisError)?.isOutage ?? false
        // An outage is expected and counted; anything else (a script error, an odd reply) is a bug.
        logger.log(level: outage ? .warning : .error, "answered without Redis", metadata: [
            "error": "\(error)", "similar_since_last_log": "\(alike)",
        ])
    }
}
