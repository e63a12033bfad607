/// A key's remaining life, as TTL / PTTL report it.
public enum TimeToLive: Sendable, Hashable {
    case absent
    case forever
    case milliseconds(Int64)
}
