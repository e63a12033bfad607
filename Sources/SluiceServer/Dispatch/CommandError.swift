import SluiceDomain

/// A command's reply when it refuses: one `-ERR ...` line. Throwing it writes nothing else.
public struct CommandError: Error, Sendable, Equatable {
    /// The whole error line without the leading '-', e.g. "ERR syntax error" or "NOAUTH ...".
    public let line: String

    public init(_ message: String) { line = "ERR " + message }
    public init(code: String, _ message: String) { line = code + " " + message }
    /// A whole error line, code included (one a backend worded).
    public init(line: String) { self.line = line }

    public static let syntax = CommandError("syntax error")
    public static let notInteger = CommandError("value is not an integer or out of range")
    public static let notFloat = CommandError("value is not a valid float")
    public static func wrongArity(_ name: String) -> CommandError {
        CommandError("wrong number of arguments for '\(name)' command")
    }

    /// A write the shared store (Redis) did not take: nothing was stored, the client may retry.
    public static func notStored(_ failure: StoreFailure) -> CommandError {
        switch failure {
        case .unavailable(let reason):
            return CommandError(code: "TRYAGAIN", "the shared store (Redis) cannot be reached, so nothing was stored; try again (\(reason))")
        case .unconfirmed(let reason):
            // Redis may have applied it: a retried SET NX may then find its own value.
            return CommandError(code: "TRYAGAIN", "the shared store (Redis) did not confirm the write in time; it may or may not have been stored (\(reason))")
        case .refused(let message):
            return CommandError("the shared store (Redis) refused the write, so nothing was stored: \(message)")
        case .notPersisted(let reason):
            return CommandError(code: "MISCONF", "Sluice cannot write its data file, so writes are refused until it can (reads still work): \(reason)")
        case .queueFull(let reason):
            return CommandError(code: "TRYAGAIN", "the data file's write queue is full, so nothing was stored; try again (\(reason))")
        }
    }
}
