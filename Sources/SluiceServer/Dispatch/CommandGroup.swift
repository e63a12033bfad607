/// A set of related commands with the capabilities they use; one per file under `Commands/`.
public protocol CommandGroup: Sendable {
    var commands: [Command] { get }
}
