import NIOCore

extension RateLimiterShard {
    /// Asks for one of `limit` slots of `key` as `slot` (see ``SlotQueue/acquire``). The shard
    /// holds at most `maxKeys` slots and waiters in all (each is an entry like a key): past
    /// that, `tooManySlots`. Returns the outcome, the grants made to earlier waiters (also when
    /// the answer is a failure: ended leases are reclaimed first), and when the key's queue
    /// next needs a ``tickSlots(_:now:)``.
    public mutating func acquire(_ key: ByteBuffer, limit: Int, slot: UInt64, priority: Int, wait: Int64, lease: Int64,
                                 now: Int64) -> SlotTransition<Result<SlotQueue.Outcome, LimitError>> {
        // Mutated in place through its index: a copy of the queue would copy its holders too.
        let index: Dictionary<ByteBuffer, SlotQueue>.Index
        if let existing = slots.index(forKey: key) {
            index = existing
        } else {
            if slots.count >= maxKeys { return SlotTransition(value: .failure(.tooManyKeys(limit: maxKeys)), grants: [], nextWakeUp: nil) }
            slots[ByteBuffer.owned(key)] = SlotQueue(agingInterval: slotAgingInterval, maxWaiters: maxWaitersPerKey)
            index = slots.index(forKey: key)!
        }
        let before = slots.values[index].entries
        // Ended leases and waits first: they free room in the shard as well as in the key —
        // under this request's limit, the key's from now on.
        slots.values[index].limit = max(limit, 1)
        let (reclaimed, timedOut) = slots.values[index].tick(now: now)
        slotsHeld += slots.values[index].entries - before
        guard slotsHeld < maxKeys else {
            return finish(index, before: slots.values[index].entries, value: .failure(.tooManySlots(limit: maxKeys)), grants: reclaimed,
                          timedOut: timedOut)
        }
        let now0 = slots.values[index].entries
        let (outcome, grants) = slots.values[index].acquire(slot: slot, limit: limit, priority: priority, wait: wait, lease: lease, now: now)
        switch outcome {
        case .granted: counters.allowed += 1
        case .refused: counters.denied += 1
        case .queued: break
        }
        return finish(index, before: now0, value: .success(outcome), grants: reclaimed + grants, timedOut: timedOut)
    }

    /// Frees `slot` of `key`: true if it was held and its lease had not ended. Its place goes to
    /// the best waiter (in the grants).
    public mutating func release(_ key: ByteBuffer, slot: UInt64, now: Int64) -> SlotTransition<Bool> {
        guard let index = slots.index(forKey: key) else { return SlotTransition(value: false, grants: [], nextWakeUp: nil) }
        let before = slots.values[index].entries
        let (reclaimed, timedOut) = slots.values[index].tick(now: now)
        let (released, grants) = slots.values[index].release(slot, now: now)
        return finish(index, before: before, value: released, grants: reclaimed + grants, timedOut: timedOut)
    }

    /// Ends the leases and waits of `key` that are over, granting freed slots.
    public mutating func tickSlots(_ key: ByteBuffer, now: Int64) -> SlotTransition<[UInt64]> {
        guard let index = slots.index(forKey: key) else { return SlotTransition(value: [], grants: [], nextWakeUp: nil) }
        let before = slots.values[index].entries
        let (grants, timedOut) = slots.values[index].tick(now: now)
        return finish(index, before: before, value: timedOut, grants: grants, timedOut: timedOut)
    }

    /// Takes waiter `id` out of `key`'s queue. `value` true: it was waiting (and is answered
    /// by the caller); false: it was granted or timed out already, or never queued.
    public mutating func cancelWait(_ key: ByteBuffer, waiter id: UInt64) -> SlotTransition<Bool> {
        guard let index = slots.index(forKey: key) else { return SlotTransition(value: false, grants: [], nextWakeUp: nil) }
        let cancelled = slots.values[index].cancel(id)
        if cancelled { slotsHeld -= 1 }
        let wake = slots.values[index].nextWakeUp
        if slots.values[index].isIdle { slots.remove(at: index) }
        return SlotTransition(value: cancelled, grants: [], nextWakeUp: wake)
    }

    private mutating func finish<T>(_ index: Dictionary<ByteBuffer, SlotQueue>.Index, before: Int, value: T,
                                    grants: [SlotQueue.Grant], timedOut: [UInt64]) -> SlotTransition<T> {
        slotsHeld += slots.values[index].entries - before
        counters.allowed += grants.count
        counters.denied += timedOut.count
        let wake = slots.values[index].nextWakeUp
        if slots.values[index].isIdle { slots.remove(at: index) }
        return SlotTransition(value: value, grants: grants, nextWakeUp: wake, timedOut: timedOut)
    }

    /// Spends `amount` of `budget` in the current window of `period` (wall-clock `now`). Refused
    /// — and not charged — when it would go over; amount 0 only checks. The window's budget is
    /// the latest asked for; a window that has ended starts again at zero. `near`: the fraction
    /// of the budget from which the decision says so.
    public mutating func spend(_ key: ByteBuffer, amount: Money, budget: Money, period: BudgetPeriod, near: Double,
                               now: Int64) -> Result<SpendDecision, LimitError> {
        var window: SpendWindow
        if let w = budgets[key], w.endsAt > now {
            window = w
            window.budget = budget
        } else {
            if budgets[key] == nil && budgets.count >= maxKeys { return .failure(.tooManyKeys(limit: maxKeys)) }
            window = SpendWindow(spent: .zero, budget: budget, endsAt: period.end(after: now), period: period)
        }
        // An amount of 0 (or below a micro-unit) checks whether anything is left.
        let allowed = window.spent + amount <= budget && (amount.micros > 0 || window.spent < budget)
        if allowed {
            window.spent = window.spent + amount
            counters.allowed += 1
        } else {
            counters.denied += 1
        }
        window.nearFraction = near
        let isNear = window.isNear(near)
        let crossed = isNear && !window.warned
        if crossed { window.warned = true }
        budgets[ByteBuffer.owned(key)] = window
        return .success(SpendDecision(allowed: allowed, remaining: window.remaining, reset: window.endsAt - now,
                                      near: isNear, crossedNear: crossed))
    }

    /// A key's budget window, if it has a live one at `now`.
    public func budget(_ key: ByteBuffer, now: Int64) -> SpendWindow? {
        guard let w = budgets[key], w.endsAt > now else { return nil }
        return w
    }

    /// Drops ended leases of keys nobody waits on (a key with waiters is ticked by whoever
    /// delivers their grants: the sweep would grant slots that nobody hands over).
    mutating func sweepSlotsAndBudgets(now: Int64) {
        var held = 0
        slots = slots.compactMapValues { queue in
            var q = queue
            if q.waiters.isEmpty { _ = q.tick(now: now) }
            held += q.entries
            return q.isIdle ? nil : q
        }
        slotsHeld = held
        budgets = budgets.filter { $0.value.endsAt > now }
    }
}
