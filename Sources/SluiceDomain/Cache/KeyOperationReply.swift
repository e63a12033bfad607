/// What a ``KeyOperation`` answers, in Redis's reply shapes.
public enum KeyOperationReply: Sendable, Equatable {
    case integer(Int64)
    /// A bulk string; nil is RESP's null.
    case bulk([UInt8]?)
    case ok
    /// A whole error line, as redis-server words it (e.g. "WRONGTYPE Operation ...").
    case error(String)

    public static let wrongType = KeyOperationReply.error("WRONGTYPE Operation against a key holding the wrong kind of value")
    public static let notInteger = KeyOperationReply.error("ERR value is not an integer or out of range")
    public static let notFloat = KeyOperationReply.error("ERR value is not a valid float")
    public static let overflow = KeyOperationReply.error("ERR increment or decrement would overflow")
    public static let notFinite = KeyOperationReply.error("ERR increment would produce NaN or Infinity")
    public static let tooLarge = KeyOperationReply.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

extension KeyOperationReply {
    /// The WRONGTYPE line alone, for commands that answer it without an operation (GET on a hash).
    public static let wrongTypeLine = "WRONGTYPE Operation against a key holding the wrong kind of value"
}
