import Synchronization

/// What LLM.GET found, by layer, and what LLM.GET / LLM.SET wrote (STATS `llm_*`, metrics
/// `sluice_llm_*`).
public final class LLMCounters: Sendable {
    public let l1Hits = Atomic<Int>(0)
    public let l2Hits = Atomic<Int>(0)
    public let semanticHits = Atomic<Int>(0)
    public let staleHits = Atomic<Int>(0)
    public let misses = Atomic<Int>(0)
    /// Semantic hits written back to the exact layers for their prompt.
    public let backfills = Atomic<Int>(0)
    /// Written-back copies found no longer answered for by their semantic entry (a bad verdict
    /// raised its threshold, or it was replaced or removed), and deleted.
    public let backfillsRetired = Atomic<Int>(0)
    /// Semantic hits not written back because the store's write queue was past its bound.
    public let backfillsSkipped = Atomic<Int>(0)
    public let sets = Atomic<Int>(0)

    public init() {}

    /// (STATS name, metrics layer label, value) for each lookup outcome.
    public var lookups: [(String, String, Int)] {
        [("llm_hits_l1", "l1", l1Hits.load(ordering: .relaxed)), ("llm_hits_l2", "l2", l2Hits.load(ordering: .relaxed)),
         ("llm_hits_semantic", "semantic", semanticHits.load(ordering: .relaxed)),
         ("llm_hits_stale", "stale", staleHits.load(ordering: .relaxed)), ("llm_misses", "miss", misses.load(ordering: .relaxed))]
    }
}
