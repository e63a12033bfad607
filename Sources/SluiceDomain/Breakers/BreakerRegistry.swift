
/// The circuit breakers of this process, by name. Breaker calls come once per upstream call,
/// far fewer than cache lookups, so one lock serves them all.
public final class BreakerRegistry: Sendable {
    let breakers = Locked<[String: CircuitBreaker]>([:])
    public let defaultPolicy: BreakerPolicy
    public let maxBreakers: Int

    public init(defaultPolicy: BreakerPolicy = BreakerPolicy(), maxBreakers: Int = 10_000) {
        self.defaultPolicy = defaultPolicy
        self.maxBreakers = maxBreakers
    }

    /// Runs `body` on the named breaker, creating it with the default policy. nil: it did not
    /// exist and the registry is full.
    public func with<R>(_ name: String, _ body: (inout CircuitBreaker) -> R) -> R? {
        breakers.withLock { all in
            if all[name] == nil {
                guard all.count < maxBreakers else { return nil }
                all[name] = CircuitBreaker(policy: defaultPolicy)
            }
            return body(&all[name]!)
        }
    }

    public struct Summary: Sendable, Hashable {
        public var breakers = 0
        public var open = 0
        public var halfOpen = 0
    }

    public func summary(now: Int64) -> Summary {
        breakers.withLock { all in
            var s = Summary(breakers: all.count)
            for name in all.keys {
                switch all[name]!.snapshot(now: now).state {
                case .open: s.open += 1
                case .halfOpen: s.halfOpen += 1
                case .closed: break
                }
            }
            return s
        }
    }
}
