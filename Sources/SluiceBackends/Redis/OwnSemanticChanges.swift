import DequeModule

/// The semantic changes this instance applied to its own index and is putting, or has put, in
/// the shared stream, until the stream tail passes them — so that the tail does not show an
/// older change of an entry over this instance's newer one.
///
/// An instance applies its change at once (a read after the reply sees it), and then meets,
/// through the stream, every change made before it: its own previous answer for the prompt,
/// another instance's. Applied as they came, those took the entry back for a moment (a read
/// after SEM.SET, SEM.SET, SEM.DEL could show the first answer; 198 of 2,000 reads with another
/// instance writing). The stream still decides — every instance ends in its state: an older set
/// or delete of an entry this instance has changed since is passed over, as the stream will
/// replace it with this instance's change anyway. A record goes when the tail passes it (its
/// origin field, or its stream ID), when the write fails or Redis does not take it, and when the
/// namespace is dropped (here or in the stream: another instance may create it again with
/// another embedder, and an older change must then land as it comes). Forgetting a record only
/// brings the moment of the older answer back, never a different final state, so the bounds
/// drop the oldest.
///
/// A plain value: the store holds it under a lock and applies what the transitions return.
struct OwnSemanticChanges {
    /// An entry by the bytes of its names, as the index keeps them (`String` would equate
    /// canonically equivalent prompts that the index keeps apart).
    struct EntryKey: Hashable {
        let namespace: [UInt8]
        let scope: [UInt8]
        let prompt: [UInt8]

        init(namespace: String, scope: String, prompt: String) {
            self.namespace = Array(namespace.utf8)
            self.scope = Array(scope.utf8)
            self.prompt = Array(prompt.utf8)
        }

        /// The entry a change is about; nil for a drop (a whole namespace).
        init?(_ change: SemanticChange) {
            switch change {
            case .set(let ns, let scope, let prompt, _, _, _, _, _, _), .delete(let ns, let scope, let prompt),
                 .verdicts(let ns, let scope, let prompt, _, _):
                self.init(namespace: ns, scope: scope, prompt: prompt)
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

    enum Stage {
        /// Taken before the local write runs; the tail does not apply it again yet, but notes
        /// that it applied an older change of the entry meanwhile.
        case applying(overtaken: Bool)
        case applied
    }

    struct Record {
        let key: EntryKey
        let change: SemanticChange
        var stage: Stage
        let bytes: Int
    }

    static let defaultMaxRecords = 4_096
    static let defaultMaxBytes = 32 << 20

    let maxRecords: Int
    let maxBytes: Int
    private(set) var records: [UInt64: Record] = [:]
    /// Sequence numbers of each entry's records, oldest first.
    private var byEntry: [EntryKey: [UInt64]] = [:]
    /// Records Redis took, in the order it answered, by stream ID: passed ones go even if the
    /// tail never meets their origin (the stream trimmed past them).
    private var published: Deque<(id: StreamID, sequence: UInt64)> = []
    private(set) var bytes = 0
    private var nextSequence: UInt64 = 1

    init(maxRecords: Int = defaultMaxRecords, maxBytes: Int = defaultMaxBytes) {
        self.maxRecords = max(1, maxRecords)
        self.maxBytes = max(1, maxBytes)
    }

    var count: Int { records.count }

    /// Before this instance sets or deletes an entry: its sequence number, for the stream
    /// entry's origin. Nil for a drop, which forgets the namespace's records instead, and for
    /// verdicts: a verdict says nothing about which answer the entry holds (an older delete of
    /// the entry must still land on it), and verdicts join in any order.
    mutating func begin(_ change: SemanticChange) -> UInt64? {
        switch change {
        case .set, .delete:
            return add(change, stage: .applying(overtaken: false))
        case .drop(let ns):
            forget(namespace: ns)
            return nil
        case .verdicts:
            return nil
        }
    }

    /// The local write is done. Returns the entry's changes to apply again, oldest first, when
    /// the tail applied an older change of the entry meanwhile (it may have landed after ours).
    mutating func applied(_ sequence: UInt64) -> [SemanticChange] {
        guard let record = records[sequence] else { return [] }
        records[sequence]?.stage = .applied
        guard case .applying(overtaken: true) = record.stage else { return [] }
        return appliedChanges(of: record.key)
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

    /// The tail meets `change`, the stream entry `id`, whose origin, when this instance made it,
    /// is `ownSequence`. Whether to apply it: a set or delete of an entry this instance has
    /// changed since (an applied record the tail has not passed: it comes later in the stream)
    /// is passed over — the entry already holds what the stream will end on, and applying the
    /// older change would show it for a moment. Verdicts are applied all the same (they join,
    /// in any order, and never bring an answer back), and so is everything else.
    mutating func passed(_ change: SemanticChange, at id: StreamID?, ownSequence: UInt64?) -> Bool {
        if records.isEmpty { return true }
        if let ownSequence { remove(ownSequence) }
        if let id {
            while let first = published.first, first.id <= id {
                published.removeFirst()
                remove(first.sequence)
            }
        }
        switch change {
        case .drop(let ns):
            forget(namespace: ns)
            return true
        case .verdicts:
            return true
        case .set, .delete:
            guard let key = EntryKey(change), byEntry[key] != nil else { return true }
            // Writes still under way do not count: they may yet fail (`landed` sees to them).
            return appliedChanges(of: key).isEmpty
        }
    }

    /// The tail applied `change` (outside the lock: a write may have begun, and landed, in
    /// between). Returns this instance's changes of the entry to apply again over it, oldest
    /// first, and marks the writes still under way, which apply them again once done.
    mutating func landed(_ change: SemanticChange) -> [SemanticChange] {
        switch change {
        case .set, .delete:
            guard !records.isEmpty, let key = EntryKey(change), let sequences = byEntry[key] else { return [] }
            for s in sequences {
                if case .applying? = records[s]?.stage { records[s]?.stage = .applying(overtaken: true) }
            }
            return appliedChanges(of: key)
        case .drop, .verdicts:
            return []
        }
    }

    /// A namespace dropped, here or through the stream.
    mutating func forget(namespace: String) {
        let bytes = Array(namespace.utf8)
        for (s, r) in records where r.key.namespace == bytes { remove(s) }
    }

    private func appliedChanges(of key: EntryKey) -> [SemanticChange] {
        (byEntry[key] ?? []).compactMap { s in
            guard let r = records[s], case .applied = r.stage else { return nil }
            return r.change
        }
    }

    private mutating func add(_ change: SemanticChange, stage: Stage) -> UInt64? {
        guard let key = EntryKey(change) else { return nil }
        let sequence = nextSequence
        nextSequence &+= 1
        let size = change.approximateBytes
        records[sequence] = Record(key: key, change: change, stage: stage, bytes: size)
        byEntry[key, default: []].append(sequence)
        bytes += size
        // Over a bound: the oldest go (a rare path; at most `maxRecords` to look through).
        while records.count > maxRecords || (bytes > maxBytes && records.count > 1), let oldest = records.keys.min() {
            remove(oldest)
        }
        return sequence
    }

    private mutating func remove(_ sequence: UInt64) {
        guard let record = records.removeValue(forKey: sequence) else { return }
        bytes -= record.bytes
        if var list = byEntry[record.key] {
            list.removeAll { $0 == sequence }
            byEntry[record.key] = list.isEmpty ? nil : list
        }
    }
}
