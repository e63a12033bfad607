/// What an exact-cache entry holds, as Redis's TYPE names it. Commands of one type refuse a key
/// of another with Redis's WRONGTYPE error; SET, DEL and the expiry commands work on any.
public enum EntryKind: UInt8, Sendable, Hashable {
    case string = 0
    /// Field → value pairs (HSET and friends), stored as one entry: ``HashFields``' encoding.
    case hash = 1

    /// TYPE's reply.
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .hash: return "hash"
        }
    }
}
