import DequeModule
import SluiceDomain

/// The semantic sets, deletes and verdicts this instance applied to its own index and is
/// putting, or has put, in the shared stream, until the stream tail passes them — so that the
/// tail can apply this instance's latest change of an entry again, in the same write of the
/// namespace, over every older change of that entry it meets first.
///
/// An instance applies its change at once (a read after the reply sees it), and then meets,
/// through the stream, every change made before it: its own previous answer for the prompt,
/// another instance's. Applied as they came, those took the entry back for a moment (a read
/// after SEM.SET, SEM.SET or after SEM.SET, SEM.DEL could show the older state; 198 of 2,000
/// reads with another instance writing). The tail still applies every change as it comes, with
/// all it does (creating the namespace, binding its embedder, evicting), so the stream decides;
/// this instance's later change of the entry follows at once, under the same lock, which is
/// where the stream will put it (and so do the verdicts this instance recorded on it since: a
/// set brought back stores its entry afresh, and a bad verdict must not lapse meanwhile). A
/// record counts once the write has landed (marked under the
/// namespace's write lock, so the tail sees a write either landed and recorded or not yet
/// landed); it goes when the tail meets its origin or passes its stream ID, when the write or
/// its XADD fails, after `maxAge` (a stream that lost it in a failover), and when the
/// namespace is dropped, here or in the stream. Forgetting a record only brings the moment of
/// the older answer back, never a different final state, so the bounds drop the oldest.
///
/// A plain value: the shared store holds it under a lock (always the last lock taken).
struct OwnSemanticChanges {
    /// An entry by the bytes of its names, as the index keeps them (``ExactText``: `String`
    /// would equate canonically equivalent prompts that the index keeps apart). It shares the
    /// change's strings.
    struct EntryKey: Hashable {
        let namespace: ExactText
        let scope: ExactText
        let prompt: ExactText

        /// The entry a set, delete or verdict is about; nil for a drop.
        init?(_ change: SemanticChange) {
            switch change {
            case .set(let ns, let scope, let prompt, _, _, _, _, _, _), .delete(let ns, let scope, let prompt),
                 .verdicts(let ns, let scope, let prompt, _, _):
                namespace = ExactText(ns)
                self.scope = ExactText(scope)
                self.prompt = ExactText(prompt)
            case .drop:
                return nil
            }
        }
    }

    /// A stream entry's ID, `<ms>-<seq>`, in its order.
    struct StreamID: Comparable {
        let milliseconds: UInt64
        let sequence: UInt64

        init?(_ text: String) {
            let parts = text.split(separator: "-", maxSplits: 1)
            guard parts.count == 2, let ms = UInt64(parts[0]), let seq = UInt64(parts[1]) else { return nil }
            milliseconds = ms
            sequence = seq
        }

        static func < (a: StreamID, b: StreamID) -> Bool {
            (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
        }
    }

    struct Record {
        let key: EntryKey
        let change: SemanticChange
        /// When the write landed in this instance's index, in landing order (until then the
        /// tail has nothing to apply again). Two writes of one entry may land in another order
        /// than they began: the index holds the one that landed last.
        var landed: UInt64?
        /// When it began, in milliseconds of the store's monotonic clock.
        let began: Int64
        let bytes: Int
    }

    static let defaultMaxRecords = 4_096
    static let defaultMaxBytes = 32 << 20
    /// The tail passes a change within milliseconds; a record this old names a change the
    /// stream lost (a failover) or a tail far behind (a replay at start-up).
    static let defaultMaxAge: Int64 = 30_000

    let maxRecords: Int
    let maxBytes: Int
    let maxAge: Int64
    private(set) var records: [UInt64: Record] = [:]
    /// Sequence numbers of each entry's records, oldest first.
    private var byEntry: [EntryKey: [UInt64]] = [:]
    /// Every record's sequence number as it began, oldest first (with those gone since, skipped
    /// when met): for the bounds and the age.
    private var arrival: Deque<UInt64> = []
    /// Records Redis took, in the order it answered, by stream ID: passed ones go even if the
    /// tail never meets their origin (the stream trimmed past them).
    private var published: Deque<(id: StreamID, sequence: UInt64)> = []
    private(set) var bytes = 0
    private var nextSequence: UInt64 = 1
    private var nextLanding: UInt64 = 1

    init(maxRecords: Int = defaultMaxRecords, maxBytes: Int = defaultMaxBytes, maxAge: Int64 = defaultMaxAge) {
        self.maxRecords = max(1, maxRecords)
        self.maxBytes = max(1, maxBytes)
        self.maxAge = max(1, maxAge)
    }

    var count: Int { records.count }

    /// Before this instance sets or deletes an entry: the record's sequence number, for the
    /// stream entry's origin. Nil for a drop, which forgets the namespace's records instead, and
    /// for verdicts, which are recorded as they land (``record(verdicts:now:)``).
    mutating func begin(_ change: SemanticChange, now: Int64) -> UInt64? {
        switch change {
        case .set, .delete:
            return add(change, now: now)
        case .drop(let ns):
            forget(namespace: ns)
            return nil
        case .verdicts:
            return nil
        }
    }

    /// Verdicts this instance recorded on an entry, as they land (under the namespace's write
    /// lock: which entry they are about is known only there). The stream bringing back a set of
    /// the entry — this instance's own, which the verdicts judged — stores it afresh, without
    /// them: they are joined into it again at once (a join: applied twice, they are the same).
    mutating func record(verdicts change: SemanticChange, now: Int64) -> UInt64? {
        guard case .verdicts = change, let sequence = add(change, now: now) else { return nil }
        landed(sequence)
        return sequence
    }

    private mutating func add(_ change: SemanticChange, now: Int64) -> UInt64? {
        guard let key = EntryKey(change) else { return nil }
        let sequence = nextSequence
        nextSequence &+= 1
        let size = change.approximateBytes
        records[sequence] = Record(key: key, change: change, landed: nil, began: now, bytes: size)
        byEntry[key, default: []].append(sequence)
        arrival.append(sequence)
        bytes += size
        while records.count > maxRecords || (bytes > maxBytes && records.count > 1) { dropOldest() }
        return sequence
    }

    /// The write landed in the index (called under the namespace's write lock).
    mutating func landed(_ sequence: UInt64) {
        guard records[sequence] != nil else { return }
        records[sequence]?.landed = nextLanding
        nextLanding &+= 1
    }

    /// The local write failed, or Redis did not take the change.
    mutating func failed(_ sequence: UInt64) {
        remove(sequence)
    }

    /// Redis took the change at `id`.
    mutating func published(_ sequence: UInt64, at id: StreamID) {
        guard records[sequence] != nil else { return }
        published.append((id, sequence))
        // Answers arrive about in ID order; entries the tail met by origin are compacted away.
        if published.count > 2 * maxRecords { published.removeAll { records[$0.sequence] == nil } }
    }

    /// The tail applies `change`, the stream entry `id`, whose origin, when this instance made
    /// it, is `ownSequence` (for a set or delete, called under the namespace's write lock).
    /// Records the tail has passed, or too old, go. Returns this instance's changes of the same
    /// entry to apply after a set or delete in the same write —
    /// the tail has not passed them, so they come later in the stream: the last landed set or
    /// delete (it replaces the entry whole), then the verdicts landed since.
    mutating func passed(_ change: SemanticChange, at id: StreamID?, ownSequence: UInt64?, now: Int64) -> [SemanticChange] {
        if records.isEmpty { return [] }
        if let ownSequence { remove(ownSequence) }
        if let id {
            while let first = published.first, first.id <= id {
                published.removeFirst()
                remove(first.sequence)
            }
        }
        while let first = arrival.first, records[first].map({ now - $0.began > maxAge }) ?? true {
            arrival.removeFirst()
            remove(first)
        }
        switch change {
        case .set, .delete:
            guard let key = EntryKey(change), let sequences = byEntry[key] else { return [] }
            return landedChanges(of: sequences)
        case .drop(let ns):
            forget(namespace: ns)
            return []
        case .verdicts:
            return []
        }
    }

    /// The last landed set or delete among `sequences`, then the verdicts landed after it (those
    /// landed before judged an answer it replaced), in landing order.
    private func landedChanges(of sequences: [UInt64]) -> [SemanticChange] {
        var last: (landed: UInt64, change: SemanticChange)?
        var verdicts: [(landed: UInt64, change: SemanticChange)] = []
        for s in sequences {
            guard let r = records[s], let landed = r.landed else { continue }
            if case .verdicts = r.change {
                verdicts.append((landed, r.change))
            } else if landed > (last?.landed ?? 0) {
                last = (landed, r.change)
            }
        }
        let since = last?.landed ?? 0
        return (last.map { [$0.change] } ?? [])
            + verdicts.filter { $0.landed > since }.sorted { $0.landed < $1.landed }.map(\.change)
    }

    /// A namespace dropped, here or through the stream: another instance may create it again,
    /// with another embedder, and older changes must then land as they come.
    mutating func forget(namespace: String) {
        let name = ExactText(namespace)
        for (s, r) in records where r.key.namespace == name { remove(s) }
    }

    private mutating func dropOldest() {
        while let first = arrival.popFirst() {
            if records[first] != nil {
                remove(first)
                return
            }
        }
    }

    private mutating func remove(_ sequence: UInt64) {
        guard let record = records.removeValue(forKey: sequence) else { return }
        bytes -= record.bytes
        if var list = byEntry[record.key], let i = list.firstIndex(of: sequence) {
            list.remove(at: i)
            byEntry[record.key] = list.isEmpty ? nil : list
        }
        // Sequence numbers of records gone are skipped when met; past twice the bound, swept.
        if arrival.count > 2 * maxRecords + 64 { arrival.removeAll { records[$0] == nil } }
    }
}
