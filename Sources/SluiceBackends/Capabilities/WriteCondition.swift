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
