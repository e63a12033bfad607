import NIOCore
import SluiceDomain

/// The rate limits' Redis-down policy, around ``RedisRateLimits``: while Redis cannot answer,
/// `--limits-when-redis-down` decides — `local` (this instance's own buckets), `deny` or
/// `allow` — and the decision is counted (`rl_fallbacks`). A reservation made while Redis was
/// down lives in this instance, so RL.SETTLE looks there when Redis does not know the id.
public final class FallbackRateLimits: RateLimits {
    public let primary: any RateLimits
    let local: EmbeddedRateLimits
    let policy: RedisDownPolicy

    public init(primary: any RateLimits, local: EmbeddedRateLimits, policy: RedisDownPolicy) {
        self.primary = primary
        self.local = local
        self.policy = policy
    }

    static let denied = LimitDecision(allowed: false, remainingRequests: -1, remainingTokens: -1, retryAfter: 1000, reset: 0)
    static let allowed = LimitDecision(allowed: true, remainingRequests: -1, remainingTokens: -1, retryAfter: 0, reset: 0)

    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        let answer = primary.take(key, spec: spec, tokens: tokens, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [self] _ in
            switch policy.limits {
            case .local: return local.take(key, spec: spec, tokens: tokens, now: now, on: eventLoop)
            case .deny: return .ready(.success(Self.denied))
            case .allow: return .ready(.success(Self.allowed))
            }
        }
    }

    public func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<ReservationDecision, LimitError>> {
        let answer = primary.reserve(key, spec: spec, estimate: estimate, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [self] _ in
            switch policy.limits {
            case .local: return local.reserve(key, spec: spec, estimate: estimate, now: now, on: eventLoop)
            case .deny: return .ready(.success(ReservationDecision(decision: Self.denied, id: nil)))
            case .allow:
                // Nothing is recorded: settling it later is answered "unknown reservation".
                return .ready(.success(ReservationDecision(decision: Self.allowed, id: RandomID.next())))
            }
        }
    }

    public func settle(id: UInt64, actual: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Settlement, LimitError>> {
        let settled = primary.settle(id: id, actual: actual, now: now, on: eventLoop).flatMap { [local] result -> Deferred<Result<Settlement, LimitError>> in
            if case .failure(.unknownReservation) = result { return local.settle(id: id, actual: actual, now: now, on: eventLoop) }
            return .ready(result)
        }
        return policy.recover(settled, .decision, on: eventLoop) { [local] _ in local.settle(id: id, actual: actual, now: now, on: eventLoop) }
    }

    public func peek(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<LimitSnapshot?> {
        let answer = primary.peek(key, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [local] _ in
            local.peek(key, now: now, on: eventLoop)
        }
    }

    /// While Redis is down a penalty and a sync apply to this instance's buckets (what `local`
    /// decides by); under `deny`/`allow` they have nothing to apply to and answer as those do.
    public func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        let answer = primary.penalize(key, for: ms, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [self] _ in
            switch policy.limits {
            case .local: return local.penalize(key, for: ms, now: now, on: eventLoop)
            case .deny: return .ready(.success(Self.denied))
            case .allow: return .ready(.success(Self.allowed))
            }
        }
    }

    public func sync(_ key: ByteBuffer, _ report: ProviderLimits, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision?, LimitError>> {
        let answer = primary.sync(key, report, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [self] _ in
            switch policy.limits {
            case .local: return local.sync(key, report, now: now, on: eventLoop)
            case .deny: return .ready(.success(Self.denied))
            case .allow: return .ready(.success(Self.allowed))
            }
        }
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        let answer = primary.acquire(key, request, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [local] _ in
            local.acquire(key, request, now: now, on: eventLoop)
        }
    }

    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        primary.cancelWait(key, ticket: ticket)
        local.cancelWait(key, ticket: ticket)
    }

    /// A slot granted locally while Redis was down is unknown to Redis: released here then.
    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        let key = ByteBuffer.owned(key)
        let released = primary.release(key, slot: slot, now: now, on: eventLoop).flatMap { [local] released -> Deferred<Bool> in
            released ? .ready(true) : local.release(key, slot: slot, now: now, on: eventLoop)
        }
        return policy.recover(released, .decision, on: eventLoop) { [local] _ in
            local.release(key, slot: slot, now: now, on: eventLoop)
        }
    }

    public func spend(_ key: ByteBuffer, _ request: SpendRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>> {
        let answer = primary.spend(key, request, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [local] _ in
            local.spend(key, request, now: now, on: eventLoop)
        }
    }

    public func budget(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<SpendWindow?> {
        let answer = primary.budget(key, now: now, on: eventLoop)
        guard case .later = answer else { return answer }
        let key = ByteBuffer.owned(key)
        return policy.recover(answer, .decision, on: eventLoop) { [local] _ in
            local.budget(key, now: now, on: eventLoop)
        }
    }

    public func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse] {
        primary.budgetsMostUsed(n, now: now)
    }

    public func statistics() -> RateLimitStatistics {
        var s = primary.statistics()
        s.fallbacks = policy.decisionFallbackCount
        return s
    }
}
