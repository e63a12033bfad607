import DequeModule

/// Candidates' word-by-word analyses (``PromptTokens``), kept between lookups. The verifier
/// cuts and lemmatises the query once per lookup but each candidate it judges every time, and
/// the same stored prompts are candidates again and again: `perf` of lookups the verifier
/// judges put 69% of the server's time in `PromptTokens.init`, half of it on candidates.
///
/// An analysis depends on the text and the lexicon only, so a kept one is never stale. Bounded:
/// ``capacity`` analyses in all (the oldest of a shard give way), of prompts up to
/// ``longestPrompt`` bytes (longer ones are analysed on a lane) and of at most
/// ``PromptVerifier/maxTokens`` tokens (more are judged by the basic checks, which do not use
/// them): ~10 KiB an analysis at worst, ~20 MiB in all (~4 KiB for a 140-byte question).
/// Sharded by the text's hash, so that lookups on several threads seldom wait for one another;
/// the lock is held for a dictionary lookup or an insertion, never for an analysis, and an
/// evicted analysis is freed after it is released.
final class CandidateTokens: Sendable {
    static let capacity = 2048
    static let shardCount = 16
    static let longestPrompt = SemanticNamespace.longPromptBytes

    struct Shard {
        var analyses: [ExactText: PromptTokens] = [:]
        var order = Deque<ExactText>()
    }

    let shards: [Locked<Shard>] = (0..<shardCount).map { _ in Locked(Shard()) }

    /// The analysis of `text`: kept, or made by `analyse` (outside the lock) and kept.
    func tokens(_ text: String, _ analyse: () -> PromptTokens) -> PromptTokens {
        guard text.utf8.count <= Self.longestPrompt else { return analyse() }
        let key = ExactText(text)
        let shard = shards[Int(UInt(bitPattern: key.hashValue) % UInt(Self.shardCount))]
        if let kept = shard.withLock({ $0.analyses[key] }) { return kept }
        let made = analyse()
        guard made.tokens.count <= PromptVerifier.maxTokens else { return made }
        let evicted = shard.withLock { s -> [PromptTokens] in
            guard s.analyses.updateValue(made, forKey: key) == nil else { return [] }
            s.order.append(key)
            var evicted: [PromptTokens] = []
            while s.order.count > Self.capacity / Self.shardCount, let oldest = s.order.popFirst() {
                if let gone = s.analyses.removeValue(forKey: oldest) { evicted.append(gone) }
            }
            return evicted
        }
        _ = evicted  // freed here, after the lock
        return made
    }

    /// How many analyses are kept (tests).
    var count: Int { shards.reduce(0) { total, shard in total + shard.withLock { $0.analyses.count } } }
}
