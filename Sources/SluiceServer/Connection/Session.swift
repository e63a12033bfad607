/// Per-connection state that commands may change. A class so that handing it to a command
/// costs no copy; only its connection's event loop touches it.
public final class Session {
    public let id: Int
    public var authenticated: Bool
    public var name: String?
    public var libraryName: String?
    public var libraryVersion: String?
    /// Failed AUTH attempts on this connection.
    public var authFailures = 0
    /// Monotonic ms before which the next failed AUTH is not answered (failures queue up).
    public var authReplyNotBefore: Int64 = 0

    public init(id: Int, authenticated: Bool) {
        self.id = id
        self.authenticated = authenticated
    }
}
