import NIOCore

extension RateLimiterShard {
    /// Takes one of `limit` slots for `duration` ms, unless all are held.
    public mutating func acquire(_ key: ByteBuffer, limit: Int, slot: UInt64, duration: Int64, now: Int64) -> Result<SlotDecision, LimitError> {
        var pool = slots[key] ?? SlotPool()
        if slots[key] == nil && slots.count >= maxKeys { return .failure(.tooManyKeys(limit: maxKeys)) }
        pool.dropExpired(now: now)
        guard pool.holders.count < limit else {
            slots[ByteBuffer.owned(key)] = pool
            counters.denied += 1
            return .success(SlotDecision(acquired: false, slot: nil, inUse: pool.holders.count, retryAfter: pool.untilFirstExpiry(now: now)))
        }
        pool.holders[slot] = now + duration
        slots[ByteBuffer.owned(key)] = pool
        counters.allowed += 1
        return .success(SlotDecision(acquired: true, slot: slot, inUse: pool.holders.count, retryAfter: 0))
    }

    /// true: the slot was held (and is free now); false: unknown or already expired.
    public mutating func release(_ key: ByteBuffer, slot: UInt64, now: Int64) -> Bool {
        guard var pool = slots[key], let expiry = pool.holders.removeValue(forKey: slot) else { return false }
        slots[key] = pool.holders.isEmpty ? nil : pool
        return expiry > now
    }

    /// Spends `amount` of `budget` in the current window of `period` ms (which starts with the
    /// first spend). Refused — and not charged — when it would go over; amount 0 only checks.
    public mutating func spend(_ key: ByteBuffer, amount: Double, budget: Double, period: Int64, now: Int64) -> Result<SpendDecision, LimitError> {
        var window: SpendWindow
        if let w = budgets[key], w.endsAt > now {
            window = w
            window.budget = budget
        } else {
            if budgets[key] == nil && budgets.count >= maxKeys { return .failure(.tooManyKeys(limit: maxKeys)) }
            window = SpendWindow(spent: 0, budget: budget, endsAt: now + period)
        }
        let allowed = window.spent + amount <= budget
        if allowed {
            window.spent += amount
            counters.allowed += 1
        } else {
            counters.denied += 1
        }
        budgets[ByteBuffer.owned(key)] = window
        return .success(SpendDecision(allowed: allowed, remaining: max(budget - window.spent, 0), reset: window.endsAt - now))
    }

    mutating func sweepSlotsAndBudgets(now: Int64) {
        slots = slots.compactMapValues { pool in
            var p = pool
            p.dropExpired(now: now)
            return p.holders.isEmpty ? nil : p
        }
        budgets = budgets.filter { $0.value.endsAt > now }
    }
}
