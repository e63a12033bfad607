import CSluiceResources

/// The Lua scripts of shared mode. The sources are `Lua/*.lua`, compiled into the binary (see
/// `CSluiceResources`), so a `sluice` copied alone still has them.
public enum LuaScripts {
    /// RL.TAKE / RESERVE / SETTLE / PEEK (Swift twin: TokenBucket, RateLimiterShard).
    public static let tokenBucket = RedisScript(name: "token_bucket", source: String(cString: sluice_lua_token_bucket()))
    /// CB.* (Swift twin: CircuitBreaker).
    public static let breaker = RedisScript(name: "breaker", source: String(cString: sluice_lua_breaker()))
    /// CACHE.SET ... LEASE (Swift twin: LeaseTable.admits).
    public static let leasedWrite = RedisScript(name: "leased_write", source: String(cString: sluice_lua_leased_write()))

    /// RL.SPEND / RL.BUDGET (Swift twin: RateLimiterShard.spend, BudgetPeriod, SpendWindow).
    public static let budget = RedisScript(name: "budget", source: String(cString: sluice_lua_budget()))
    /// RL.ACQUIRE / RL.RELEASE (Swift twin: SlotQueue).
    public static let slotQueue = RedisScript(name: "slot_queue", source: String(cString: sluice_lua_slot_queue()))

    /// INCRBY / INCRBYFLOAT / APPEND on an entry with a header (Swift twin: KeyOperation.apply).
    public static let plainOperation = RedisScript(name: "plain_op", source: String(cString: sluice_lua_plain_op()))

    /// CACHE.GET ... LEASE after a miss (Swift twin: EmbeddedExactCache.lease).
    public static let takeLease = RedisScript(name: "take_lease", source: String(cString: sluice_lua_take_lease()))

    /// LLM.GET retiring an outdated copy (Swift twin: EmbeddedExactCache.deleteUnlessLeased).
    public static let retireUnlessLeased = RedisScript(name: "retire_unless_leased", source: String(cString: sluice_lua_retire_unless_leased()))

    public static let all = [tokenBucket, breaker, leasedWrite, budget, slotQueue, plainOperation, takeLease, retireUnlessLeased]
}
