/// Per-connection state that commands may change. A class so that handing it to a command
/// costs no copy; only its connection's event loop touches it.
public final class Session {
    public let id: Int
    public var authenticated: Bool
    public var name: String?
    public var libraryName: String?
    public var libraryVersion: String?

    public init(id: Int, authenticated: Bool) {
        self.id = id
        self.authenticated = authenticated
    }
}
