/// A ``KeyOperation`` decided on a key's current entry: what to do to the entry, and the reply.
public struct KeyOperationOutcome: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        case none
        case write([UInt8], EntryMeta)
        case delete
    }

    public var change: Change
    public var reply: KeyOperationReply

    public init(_ change: Change, _ reply: KeyOperationReply) {
        self.change = change
        self.reply = reply
    }

    static func refuse(_ reply: KeyOperationReply) -> KeyOperationOutcome { KeyOperationOutcome(.none, reply) }
}
