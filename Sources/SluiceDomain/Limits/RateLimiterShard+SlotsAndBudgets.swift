import NIOCore

extension RateLimiterShard {
    /// Takes one of `limit` slots for `duration` ms, unless all are held. The shard holds at
    /// most `maxKeys` slots in all (each is an entry like a key): past that, `tooManySlots`.
    public mutating func acquire(_ key: ByteBuffer, limit: Int, slot: UInt64, duration: Int64, now: Int64) -> Result<SlotDecision, LimitError> {
        // Mutated in place through its index: a copy of the pool would copy its holders too.
        let index: Dictionary<ByteBuffer, SlotPool>.Index
        if let existing = slots.index(forKey: key) {
            index = existing
            slotsHeld -= slots.values[index].dropExpired(now: now)
        } else {
            if slots.count >= maxKeys { return .failure(.tooManyKeys(limit: maxKeys)) }
            slots[ByteBuffer.owned(key)] = SlotPool()
            index = slots.index(forKey: key)!
        }
        let inUse = slots.values[index].holders.count
        guard inUse < limit else {
            counters.denied += 1
            return .success(SlotDecision(acquired: false, slot: nil, inUse: inUse, retryAfter: slots.values[index].untilFirstExpiry(now: now)))
        }
        guard slotsHeld < maxKeys else {
            if inUse == 0 { slots.remove(at: index) }
            return .failure(.tooManySlots(limit: maxKeys))
        }
        slots.values[index].add(slot, expiresAt: now.addingSaturating(duration))
        slotsHeld += 1
        counters.allowed += 1
        return .success(SlotDecision(acquired: true, slot: slot, inUse: inUse + 1, retryAfter: 0))
    }

    /// true: the slot was held (and is free now); false: unknown or already expired.
    public mutating func release(_ key: ByteBuffer, slot: UInt64, now: Int64) -> Bool {
        guard let index = slots.index(forKey: key), let expiry = slots.values[index].remove(slot) else { return false }
        slotsHeld -= 1
        if slots.values[index].holders.isEmpty { slots.remove(at: index) }
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
        var dropped = 0
        slots = slots.compactMapValues { pool in
            var p = pool
            dropped += p.dropExpired(now: now)
            return p.holders.isEmpty ? nil : p
        }
        slotsHeld -= dropped
        budgets = budgets.filter { $0.value.endsAt > now }
    }
}
