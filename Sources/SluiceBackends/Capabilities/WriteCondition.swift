/// When a write to the exact cache may go ahead.
public enum WriteCondition: Sendable, Hashable {
    case always
    /// SET ... NX
    case ifAbsent
    /// SET ... XX
    case ifPresent
    /// CACHE.SET ... LEASE token: unless another caller holds a live lease on the key; ends it.
    case leaseHolder(UInt64)
}

extension WriteCondition {
    /// Unless a caller holds a live lease on the key (no lease token is 0): a write made for a
    /// reader (LLM.GET's written-back copy) leaves the question to the lease holder.
    public static var unlessLeased: WriteCondition { .leaseHolder(0) }
}
