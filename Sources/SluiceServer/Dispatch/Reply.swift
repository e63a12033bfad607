import SluiceProtocol

/// A reply that arrives after its command returned: how to write it, when its turn comes.
/// Made by ``CommandContext/reply(_:into:_:)`` from the same writing function the command uses
/// when its answer is ready at once, so each reply has one encoding.
public struct Reply: Sendable {
    public let write: @Sendable (inout RESPWriter) -> Void

    public init(_ write: @escaping @Sendable (inout RESPWriter) -> Void) {
        self.write = write
    }
}
