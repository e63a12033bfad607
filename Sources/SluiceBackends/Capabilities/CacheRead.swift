import SluiceDomain

/// What a read of the exact cache found.
public enum CacheRead: Sendable {
    case hit(CachedValue, EntryMeta, CacheLayer)
    /// Not there. `lease`: the token of a lease granted to this caller (it asked for one and
    /// nobody else holds it), or nil.
    case miss(lease: UInt64?)
}
