import NIOCore

/// Questions whose one lease is out — LLM.GET granted it on a full miss — and not yet answered,
/// by namespace: a paraphrase asked meanwhile waits for that answer (it is told which question
/// it waits for, and gets no lease) instead of making an upstream call of its own.
///
/// Searched as the semantic layer searches, by the same code: the nearest by cosine at or above
/// the caller's bar, then the verifier, in a ``SemanticNamespace`` of their own whose entries
/// expire with their lease. What this instance granted only: in shared mode a paraphrase asked
/// of another instance makes its own call (see DECISIONS).
///
/// Bounded: ``maxPerNamespace`` questions a namespace (the oldest give way), ``maxNamespaces``
/// namespaces and ``maxBytes`` in all (past them a question is not recorded, and its
/// paraphrases make their own calls, as before this existed); prompts longer than
/// ``longestPrompt`` are neither recorded nor matched (the verifier reads them for
/// milliseconds, and this runs on an event loop).
public final class PendingQuestions: Sendable {
    public static let maxPerNamespace = 256
    public static let maxNamespaces = 1024
    public static let maxBytes = 64 << 20
    public static let longestPrompt = SemanticNamespace.longPromptBytes

    struct State {
        var namespaces: [String: SemanticNamespace] = [:]
        var bytes = 0
        /// Bumped by every recording: a search made on an older snapshot may have missed it.
        var generation: UInt64 = 0
    }

    let state = Locked(State())
    let verifier: PromptVerifier?

    public init(verifier: PromptVerifier?) {
        self.verifier = verifier
    }

    /// The pending question that `prompt` (in `scope`) asks again, at `minScore` — or, when there
    /// is none, nil and `prompt` recorded as pending until `expiresAt`. One step as far as
    /// callers can tell: of two paraphrases asked at once, one is recorded and the other waits.
    /// The search runs outside the lock on a snapshot (a copy-on-write value); a recording made
    /// meanwhile sends it round again (at most ``searches`` times, then it records regardless).
    public func waitOrRecord(namespace: String, scope: String, prompt: String, vector: [Float], embedder: String, minScore: Float,
                             now: Int64, expiresAt: Int64) -> String? {
        waitOrRecord(namespace: namespace, scope: scope, prompt: prompt, vector: vector, embedder: embedder, minScore: minScore,
                     now: now, expiresAt: expiresAt, betweenSearchAndLock: nil)
    }

    /// `betweenSearchAndLock`: run after each search, before the lock is taken again — where
    /// another caller's recording would fall in a race (tests make one happen there).
    func waitOrRecord(namespace: String, scope: String, prompt: String, vector: [Float], embedder: String, minScore: Float,
                      now: Int64, expiresAt: Int64, betweenSearchAndLock: (() -> Void)?) -> String? {
        guard prompt.utf8.count <= Self.longestPrompt else { return nil }
        for attempt in 1...Self.searches {
            var (snapshot, generation) = state.withLock { ($0.namespaces[namespace], $0.generation) }
            if let searched = snapshot,
               case .success(.hit(let match)) = searched.get(prompt, vector: vector, embedder: embedder, scope: scope, minScore: minScore,
                                                              now: now, verifier: verifier),
               match.entry.prompt != prompt {
                // (Its own text: a record outliving its lease by a moment, made for this very
                // question — recorded again below, not waited for.)
                return match.entry.prompt
            }
            // Let go of the snapshot before recording: while it shares the namespace's storage,
            // the recording would copy all of it (the index, the maps) — 70 µs a miss.
            snapshot = nil
            betweenSearchAndLock?()
            let recorded = state.withLock { s -> Bool in
                guard s.generation == generation || attempt == Self.searches else { return false }
                Self.record(&s, namespace: namespace, scope: scope, prompt: prompt, vector: vector, embedder: embedder, now: now, expiresAt: expiresAt)
                return true
            }
            if recorded { return nil }
        }
        return nil
    }

    /// How many times ``waitOrRecord`` searches before it records without looking again.
    static let searches = 3

    static func record(_ s: inout State, namespace: String, scope: String, prompt: String, vector: [Float], embedder: String,
                       now: Int64, expiresAt: Int64) {
        s.generation &+= 1
        var pending: SemanticNamespace
        if let existing = s.namespaces.removeValue(forKey: namespace) {
            pending = existing
        } else {
            guard s.namespaces.count < maxNamespaces else { return }
            pending = SemanticNamespace(maxEntries: maxPerNamespace)
        }
        let before = pending.bytes
        pending.sweep(now: now)
        // The bound is checked with the entry's own cost roughly (prompt, vector, overhead).
        let cost = prompt.utf8.count + scope.utf8.count + vector.count * 4 + 160
        if s.bytes - (before - pending.bytes) + cost <= maxBytes {
            _ = pending.set(prompt, response: ByteBuffer(), vector: vector, embedder: embedder, scope: scope, createdAt: now, expiresAt: expiresAt)
        }
        s.bytes += pending.bytes - before
        if pending.count > 0 { s.namespaces[namespace] = pending }
    }

    /// `prompt` was answered (LLM.SET stored it): no longer pending.
    public func answered(namespace: String, scope: String, prompt: String) {
        state.withLock { s in
            guard var pending = s.namespaces.removeValue(forKey: namespace) else { return }
            let before = pending.bytes
            _ = pending.delete(prompt, scope: scope)
            s.bytes += pending.bytes - before
            if pending.count > 0 { s.namespaces[namespace] = pending }
        }
    }

    /// Questions pending now (expired ones included until swept), and the bytes they take.
    public var summary: (questions: Int, bytes: Int) {
        state.withLock { s in (s.namespaces.values.reduce(0) { $0 + $1.count }, s.bytes) }
    }
}
