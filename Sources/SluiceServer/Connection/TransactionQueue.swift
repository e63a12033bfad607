import NIOCore
import SluiceDomain
import SluiceProtocol

/// A connection's MULTI … EXEC: the commands queued so far, within bounds. A command that
/// cannot be queued (unknown, wrong arity, past the bounds) aborts the transaction, as in Redis:
/// EXEC then answers EXECABORT and runs nothing.
public struct TransactionQueue: Sendable {
    /// Commands one transaction may hold.
    public static let maxCommands = 10_000
    /// Bytes of queued requests one transaction may hold (a client's queue is memory the server
    /// keeps until EXEC).
    public static let maxBytes = 32 << 20

    public private(set) var commands: [RESPCommand] = []
    public private(set) var bytes = 0
    public private(set) var aborted = false

    public init() {}

    public enum Queued: Sendable, Equatable {
        case queued
        /// Past a bound: the transaction is aborted, and this says which.
        case full(String)
    }

    /// Queues `command` (an owned copy: the read buffer it came from is reused).
    public mutating func queue(_ command: RESPCommand) -> Queued {
        guard commands.count < Self.maxCommands else {
            aborted = true
            return .full("a transaction may queue at most \(Self.maxCommands) commands")
        }
        guard bytes + command.frame.readableBytes <= Self.maxBytes else {
            aborted = true
            return .full("a transaction may queue at most \(Self.maxBytes) bytes")
        }
        bytes += command.frame.readableBytes
        commands.append(RESPCommand(command.arguments.map { ByteBuffer.owned($0) }))
        return .queued
    }

    /// A command could not be queued: EXEC will refuse.
    public mutating func abort() {
        aborted = true
    }
}
