import NIOCore

/// Commands of the contract that later work brings (the semantic cache).
/// Until then each answers one clear error instead of "unknown command".
enum PlannedCommands: CommandGroup {
    static let planned: [(names: [String], what: String)] = [
        (["sem.set", "sem.get", "sem.del", "sem.info"], "the semantic cache"),
    ]

    static func commands(_ env: ServerEnvironment) -> [Command] {
        planned.flatMap { group in
            group.names.map { name in
                let message = "'\(name.uppercased())' is not available yet in this Sluice build (\(group.what) is planned; see docs/PROTOCOL.md)"
                return Command(name, arity: -1, summary: "not available yet: \(group.what)") { _, _ throws(CommandError) in
                    throw CommandError(message)
                }
            }
        }
    }
}
