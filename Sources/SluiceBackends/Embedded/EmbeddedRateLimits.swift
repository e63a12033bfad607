import NIOCore
import SluiceDomain

/// This process's rate limits: the domain's ``RateLimiter`` (sharded buckets, reservations,
/// slots, budgets), answered at once — except an `RL.ACQUIRE ... WAIT` that finds every slot
/// taken: its answer is a promise kept in ``waiting`` until a slot is granted to it (a release,
/// an ended lease) or its wait ends, as Redis's `BZPOPMIN` keeps a blocked client. No thread
/// waits: a timer on the request's event loop wakes the key's queue when a lease or a wait ends.
public final class EmbeddedRateLimits: RateLimits {
    public let limiter: RateLimiter
    let clock: any TimeSource

    /// A queued RL.ACQUIRE: where its answer goes.
    struct Waiting {
        let promise: EventLoopPromise<Result<SlotDecision, LimitError>>
        let key: ByteBuffer
        let eventLoop: any EventLoop
        let deadline: Int64
        /// Its place and wait estimate when it queued: the answer if its wait ends.
        var position: Int
        var estimate: Int64
        var timer: Scheduled<Void>?
    }

    /// Queued requests by ticket (the limiter's queue bounds how many).
    let waiting = Locked<[UInt64: Waiting]>([:])

    public init(limiter: RateLimiter, clock: any TimeSource = SystemClock()) {
        self.limiter = limiter
        self.clock = clock
    }

    public func take(_ key: ByteBuffer, spec: LimitSpec, tokens: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        .ready(limiter.take(key, spec: spec, tokens: tokens, now: now))
    }

    public func reserve(_ key: ByteBuffer, spec: LimitSpec, estimate: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<ReservationDecision, LimitError>> {
        let (result, id) = limiter.reserve(key, spec: spec, estimate: estimate, now: now)
        return .ready(result.map { ReservationDecision(decision: $0, id: $0.allowed ? id : nil) })
    }

    public func settle(id: UInt64, actual: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<Settlement, LimitError>> {
        .ready(limiter.settle(id: id, actual: actual, now: now))
    }

    public func peek(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<LimitSnapshot?> {
        .ready(limiter.peek(key, now: now).map { LimitSnapshot(decision: $0.0, spec: $0.1) })
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        guard request.wait > 0 else {
            let t = limiter.acquire(key, request, now: now)
            deliver(t.grants)
            return .ready(t.value.map { Self.decision($0, ticket: request.ticket) })
        }
        // Registered before the queue sees it: a grant made by another thread the moment it
        // queues finds its promise.
        let promise = eventLoop.makePromise(of: Result<SlotDecision, LimitError>.self)
        let owned = ByteBuffer.owned(key)
        waiting.withLock {
            $0[request.ticket] = Waiting(promise: promise, key: owned, eventLoop: eventLoop, deadline: now.addingSaturating(request.wait),
                                         position: 0, estimate: 0, timer: nil)
        }
        let t = limiter.acquire(key, request, now: now)
        deliver(t.grants)
        if case .success(.queued(let position, let estimate)) = t.value {
            let still = waiting.withLock { all -> Bool in
                guard all[request.ticket] != nil else { return false }  // granted already
                all[request.ticket]!.position = position
                all[request.ticket]!.estimate = estimate
                return true
            }
            if still { schedule(request.ticket, after: t.nextWakeUp, now: now) }
        } else {
            complete(request.ticket, with: t.value.map { Self.decision($0, ticket: request.ticket) })
        }
        return .later(promise.futureResult)
    }

    /// Takes a queued request out (its client went away): it is answered as not granted.
    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        guard limiter.cancelWait(key, waiter: ticket) else { return }
        guard let w = waiting.withLock({ $0[ticket] }) else { return }
        complete(ticket, with: .success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        let t = limiter.release(key, slot: slot, now: now)
        deliver(t.grants)
        return .ready(t.value)
    }

    static func decision(_ outcome: SlotQueue.Outcome, ticket: UInt64) -> SlotDecision {
        switch outcome {
        case .granted: return .granted(ticket)
        case .queued(let position, let estimate), .refused(let position, let estimate):
            return SlotDecision(granted: false, slot: nil, queuePosition: position, estimatedWait: estimate)
        }
    }

    /// Answers the requests that were granted slots.
    func deliver(_ grants: [SlotQueue.Grant]) {
        for g in grants { complete(g.waiter, with: .success(.granted(g.waiter, waited: g.waited))) }
    }

    /// Answers a queued request, once (the first answer wins; later ones find nothing).
    func complete(_ ticket: UInt64, with answer: Result<SlotDecision, LimitError>) {
        guard let w = waiting.withLock({ $0.removeValue(forKey: ticket) }) else { return }
        w.timer?.cancel()
        w.promise.succeed(answer)
    }

    /// Wakes `ticket`'s queue when its next lease or wait ends (at the latest, at its deadline).
    func schedule(_ ticket: UInt64, after wake: Int64?, now: Int64) {
        waiting.withLock { all in
            guard let w = all[ticket] else { return }
            let at = min(wake ?? w.deadline, w.deadline)
            let delay = TimeAmount.milliseconds(max(at - now, 0) + 1)
            all[ticket]!.timer = w.eventLoop.scheduleTask(in: delay) { [self] in self.wake(ticket) }
        }
    }

    /// A lease or a wait of `ticket`'s key has ended: tick the queue, deliver, and answer
    /// `ticket` if its wait is over; else wait for the next event.
    func wake(_ ticket: UInt64) {
        guard let w = waiting.withLock({ $0[ticket] }) else { return }
        let now = clock.monotonicMilliseconds()
        let t = limiter.tickSlots(w.key, now: now)
        deliver(t.grants)
        for id in t.value where id != ticket {
            if let other = waiting.withLock({ $0[id] }) {
                complete(id, with: .success(SlotDecision(granted: false, slot: nil, queuePosition: other.position, estimatedWait: other.estimate)))
            }
        }
        if now >= w.deadline {
            _ = limiter.cancelWait(w.key, waiter: ticket)
            complete(ticket, with: .success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
        } else {
            schedule(ticket, after: t.nextWakeUp, now: now)
        }
    }

    public func spend(_ key: ByteBuffer, _ request: SpendRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SpendDecision, LimitError>> {
        .ready(limiter.spend(key, amount: request.amount, budget: request.budget, period: request.period, near: request.near, now: now))
    }

    public func budget(_ key: ByteBuffer, now: Int64, on eventLoop: any EventLoop) -> Deferred<SpendWindow?> {
        .ready(limiter.budget(key, now: now))
    }

    public func statistics() -> RateLimitStatistics {
        RateLimitStatistics(local: limiter.summary(), shared: false, fallbacks: 0)
    }

    public func budgetsMostUsed(_ n: Int, now: Int64) -> [RateLimiter.BudgetUse] {
        limiter.budgetsMostUsed(n, now: now)
    }
}
