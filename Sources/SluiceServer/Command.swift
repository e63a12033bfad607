import NIOCore
import SluiceProtocol

/// One command the server understands. Groups of them live one file each under `Commands/`
/// and are listed once in ``CommandTable/groups``.
public struct Command: Sendable {
    public typealias Handler = @Sendable (inout CommandContext, inout RESPWriter) throws(CommandError) -> CommandResult

    /// Lower-case name, as `COMMAND` lists it.
    public let name: String
    /// Redis convention: n = exactly n arguments counting the verb; -n = at least n.
    public let arity: Int
    /// May run before AUTH (AUTH, HELLO, QUIT, PING is *not* among them, as in Redis).
    public let allowedBeforeAuth: Bool
    /// One line for COMMAND DOCS / docs.
    public let summary: String
    public let run: Handler

    public init(_ name: String, arity: Int, allowedBeforeAuth: Bool = false, summary: String, run: @escaping Handler) {
        self.name = name.lowercased()
        self.arity = arity
        self.allowedBeforeAuth = allowedBeforeAuth
        self.summary = summary
        self.run = run
    }

    func acceptsArgumentCount(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }
}

/// A source of commands; one per file.
public protocol CommandGroup: Sendable {
    static func commands(_ environment: ServerEnvironment) -> [Command]
}

public enum CommandResult {
    /// The reply is in the output buffer.
    case done
    /// The reply comes later; later requests on this connection wait for it (replies stay in order).
    case later(EventLoopFuture<RESPValue>)
    /// Reply written; close the connection after flushing (QUIT).
    case close
}

/// A command's reply when it refuses: one `-ERR ...` line. Throwing it writes nothing else.
public struct CommandError: Error, Sendable, Equatable {
    /// The whole error line without the leading '-', e.g. "ERR syntax error" or "NOAUTH ...".
    public let line: String

    public init(_ message: String) { line = "ERR " + message }
    public init(code: String, _ message: String) { line = code + " " + message }

    public static let syntax = CommandError("syntax error")
    public static let notInteger = CommandError("value is not an integer or out of range")
    public static let notFloat = CommandError("value is not a valid float")
    public static func wrongArity(_ name: String) -> CommandError {
        CommandError("wrong number of arguments for '\(name)' command")
    }
}

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

/// What a command handler gets: its arguments (after the verb), the time the read batch
/// started, the connection's event loop and session.
public struct CommandContext {
    public var arguments: RESPCommand.Arguments
    /// Arguments after the verb.
    public let argumentCount: Int
    public let now: Int64
    // The connection handler owns these and outlives every synchronous command call, so the
    // context borrows them without reference counting (they are on the per-request path).
    public unowned(unsafe) let eventLoop: any EventLoop
    public unowned(unsafe) let session: Session
    public unowned(unsafe) let table: CommandTable
    public let name: String

    /// Next argument. The arity check before the handler runs guarantees the fixed ones exist.
    @inlinable
    public mutating func next() throws(CommandError) -> ByteBuffer {
        guard let argument = arguments.next() else { throw CommandError.wrongArity(name) }
        return argument
    }

    @inlinable
    public mutating func nextInteger() throws(CommandError) -> Int {
        guard let value = try next().decimalValue else { throw CommandError.notInteger }
        return value
    }

    public var hasMore: Bool { !arguments.isEmpty }
}
