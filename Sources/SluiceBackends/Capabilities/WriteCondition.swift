/// When a write to the exact cache may go ahead.
public enum WriteCondition: Sendable, Hashable {
    case always
    /// SET ... NX
    case ifAbsent
    /// SET ... XX
    case ifPresent
    /// CACHE.SET ... LEASE token: unless another caller holds a live lease on the key; ends it.
    case leaseHolder(UInt64)
    /// A copy made for a reader (LLM.GET's written-back answer): only where the key holds no
    /// entry — an answer stored since the reader looked (an acknowledged LLM.SET) is never
    /// covered by a copy of another prompt's — and unless a caller other than `lease`'s holder
    /// (0: the reader holds none) holds a live lease on the key; ends that lease.
    case copy(lease: UInt64)
}

extension WriteCondition {
    /// A reader's copy (``copy(lease:)``), whatever its lease.
    public var isReaderCopy: Bool {
        if case .copy = self { return true }
        return false
    }
}
