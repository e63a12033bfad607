import NIOCore
import SluiceDomain

/// This process's rate limits: the domain's ``RateLimiter`` (sharded buckets, reservations,
/// slots, budgets), answered at once — except an `RL.ACQUIRE ... WAIT` that finds every slot
/// taken: its answer is a promise kept in ``waiting`` until the key's queue grants it a slot or
/// ends its wait, as Redis's `BZPOPMIN` keeps a blocked client. No thread waits.
///
/// Every answer to a queued request comes from the queue itself: a grant, or its place in a
/// transition's `timedOut` (never from a clock read here, which could race a grant made on
/// another thread). One timer per key, armed for the queue's next lease end or wait end after
/// every transition, ticks the queue when nobody else does.
public final class EmbeddedRateLimits: RateLimits {
    public let limiter: RateLimiter
    let clock: any TimeSource

    /// A queued RL.ACQUIRE: where its answer goes.
    struct Waiting {
        let promise: EventLoopPromise<Result<SlotDecision, LimitError>>
        /// Its place and wait estimate when it queued: the answer if its wait ends.
        var position: Int
        var estimate: Int64
    }

    /// Queued requests by ticket (the limiter's queues bound how many).
    let waiting = Locked<[UInt64: Waiting]>([:])

    /// Keys with waiters, each with at most one timer.
    let timers = KeyTimers()

    /// Timers armed now (one per key at most: tests check it).
    public var armedTimers: Int { timers.count }

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

    public func penalize(_ key: ByteBuffer, for ms: Int64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision, LimitError>> {
        .ready(limiter.penalize(key, for: ms, now: now))
    }

    public func sync(_ key: ByteBuffer, _ report: ProviderLimits, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<LimitDecision?, LimitError>> {
        .ready(limiter.sync(key, report, now: now))
    }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        guard request.wait > 0 else {
            let t = limiter.acquire(key, request, now: now)
            settle(key, t, on: eventLoop)
            return .ready(t.value.map { Self.decision($0, ticket: request.ticket) })
        }
        // Registered before the queue sees it: a grant made by another thread the moment it
        // queues finds its promise.
        let promise = eventLoop.makePromise(of: Result<SlotDecision, LimitError>.self)
        waiting.withLock { $0[request.ticket] = Waiting(promise: promise, position: 0, estimate: 0) }
        let t = limiter.acquire(key, request, now: now)
        if case .success(.queued(let position, let estimate)) = t.value {
            waiting.withLock { all in
                guard all[request.ticket] != nil else { return }  // granted already
                all[request.ticket]!.position = position
                all[request.ticket]!.estimate = estimate
            }
        } else {
            complete(request.ticket, with: t.value.map { Self.decision($0, ticket: request.ticket) })
        }
        settle(key, t, on: eventLoop)
        return .later(promise.futureResult)
    }

    /// Takes a queued request out (its client went away): it is answered as not granted. A
    /// request granted in the meantime keeps its slot until released or its lease ends.
    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        let t = limiter.cancelWait(key, waiter: ticket)
        if t.value { answerNotGranted(ticket) }
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        let t = limiter.release(key, slot: slot, now: now)
        settle(key, t, on: eventLoop)
        return .ready(t.value)
    }

    static func decision(_ outcome: SlotQueue.Outcome, ticket: UInt64) -> SlotDecision {
        switch outcome {
        case .granted: return .granted(ticket)
        case .queued(let position, let estimate), .refused(let position, let estimate):
            return SlotDecision(granted: false, slot: nil, queuePosition: position, estimatedWait: estimate)
        }
    }

    /// What every transition leaves to do: answer the grants and the ended waits, and arm the
    /// key's timer for its next event.
    func settle<T>(_ key: ByteBuffer, _ t: SlotTransition<T>, on eventLoop: any EventLoop) {
        for g in t.grants { complete(g.waiter, with: .success(.granted(g.waiter, waited: g.waited))) }
        for id in t.timedOut { answerNotGranted(id) }
        if let wake = t.nextWakeUp { arm(key, at: wake, on: eventLoop) }
    }

    func answerNotGranted(_ ticket: UInt64) {
        guard let w = waiting.withLock({ $0[ticket] }) else { return }
        complete(ticket, with: .success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
    }

    /// Answers a queued request, once (the first answer wins; later ones find nothing).
    func complete(_ ticket: UInt64, with answer: Result<SlotDecision, LimitError>) {
        guard let w = waiting.withLock({ $0.removeValue(forKey: ticket) }) else { return }
        w.promise.succeed(answer)
    }

    /// Makes sure `key` is ticked at `at` (monotonic ms).
    func arm(_ key: ByteBuffer, at: Int64, on eventLoop: any EventLoop) {
        let owned = ByteBuffer.owned(key)
        timers.arm(owned, at: at, now: clock.monotonicMilliseconds(), on: eventLoop) { [self] id in fire(owned, timer: id, on: eventLoop) }
    }

    /// A key's timer fired: tick its queue (answering what that decides) and arm the next.
    func fire(_ key: ByteBuffer, timer: UInt64, on eventLoop: any EventLoop) {
        guard timers.claim(key, id: timer) else { return }
        settle(key, limiter.tickSlots(key, now: clock.monotonicMilliseconds()), on: eventLoop)
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
