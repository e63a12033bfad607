import NIOCore
import SluiceProtocol

/// One command the server understands. Groups of them live one file each under `Commands/`,
/// each a ``CommandGroup`` that holds the capabilities it uses.
public struct Command: Sendable {
    public typealias Handler = @Sendable (inout CommandContext, inout RESPWriter) throws(CommandError) -> CommandResult

    /// Lower-case name, as `COMMAND` lists it.
    public let name: String
    /// Redis convention: n = exactly n arguments counting the verb; -n = at least n.
    public let arity: Int
    /// May run before AUTH (AUTH, HELLO, QUIT; PING is *not* among them, as in Redis).
    public let allowedBeforeAuth: Bool
    /// One line for COMMAND DOCS / docs.
    public let summary: String
    /// Runs at once between MULTI and EXEC instead of being queued (EXEC, DISCARD, MULTI,
    /// WATCH, QUIT, as in Redis).
    public let runsInsideMulti: Bool
    public let run: Handler

    public init(_ name: String, arity: Int, allowedBeforeAuth: Bool = false, runsInsideMulti: Bool = false, summary: String,
                run: @escaping Handler) {
        self.name = name.lowercased()
        self.arity = arity
        self.allowedBeforeAuth = allowedBeforeAuth
        self.runsInsideMulti = runsInsideMulti
        self.summary = summary
        self.run = run
    }

    func acceptsArgumentCount(_ count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }
}
