/// The semantic changes this instance made and put in the stream, by entry, with their stream
/// IDs — so that the stream tail does not apply an older change of the same entry over the
/// newer one this instance already holds.
///
/// An instance applies its own change to its index at once (a read after the reply sees it),
/// and then meets it again in the stream, after every change made before it. Applied blindly,
/// those older changes of the same entry (the instance's own previous answer, another
/// instance's) took it back for a moment: a SEM.DEL pipelined after an LLM.SET brought the
/// entry back until the delete came round too. In stream order each older change would be
/// replaced by this one anyway, so skipping them changes no instance's final state: the stream
/// still decides. Changes of other entries, and drops, are applied as they come (an older drop
/// of the namespace is undone when this change comes round, which is applied again).
struct OwnStreamChanges {
    struct Entry: Hashable {
        var namespace: String
        var scope: String
        var prompt: String
    }

    /// A stream entry's ID (`<ms>-<seq>`), ordered as Redis orders them.
    struct ID: Comparable {
        var milliseconds: UInt64
        var sequence: UInt64

        init?(_ text: String) {
            let parts = text.split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
            milliseconds = ms
            sequence = seq
        }

        static func < (a: ID, b: ID) -> Bool {
            (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
        }
    }

    /// Entries with a change of this instance's still to come round. Bounded: past it all are
    /// forgotten (and older changes applied as they come again, as before this existed).
    static let maxTracked = 65_536
    private(set) var latest: [Entry: ID] = [:]

    /// This instance put a change of `entry` in the stream at `id`.
    mutating func published(_ entry: Entry, at id: ID) {
        if latest.count >= Self.maxTracked && latest[entry] == nil { latest.removeAll() }
        if let known = latest[entry], known > id { return }
        latest[entry] = id
    }

    /// Whether the tail applies the change of `entry` at `id`: not when this instance's own
    /// later change of it is still to come round.
    mutating func applies(_ entry: Entry, at id: ID) -> Bool {
        guard let own = latest[entry] else { return true }
        if id < own { return false }
        latest[entry] = nil
        return true
    }
}
