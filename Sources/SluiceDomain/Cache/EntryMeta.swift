/// What the cache knows about a stored value besides its bytes. Times are wall-clock
/// milliseconds since the Unix epoch, so they mean the same after a restart.
public struct EntryMeta: Sendable, Hashable {
    /// Largest `TOKENS` a client may attach (the saved-tokens counters saturate anyway).
    public static let maxTokens: Int64 = 10_000_000_000
    /// Largest `COST` a client may attach.
    public static let maxCost: Double = 1_000_000_000

    public var createdAt: Int64
    /// 0 = never expires.
    public var expiresAt: Int64
    /// LLM tokens the cached answer stands for (`CACHE.SET ... TOKENS n`), counted as saved on a hit.
    public var tokens: Int64
    /// Cost of the cached answer (`CACHE.SET ... COST c`), counted as saved on a hit.
    public var cost: Double
    /// `CACHE.SET ... TAG t`: whose savings a hit counts as (``SavingsTags``; 0 = no tag).
    public var tag: UInt16
    /// A string (every cache entry) or a hash (HSET); persisted with the entry.
    public var kind: EntryKind

    public init(createdAt: Int64, expiresAt: Int64 = 0, tokens: Int64 = 0, cost: Double = 0, tag: UInt16 = 0, kind: EntryKind = .string) {
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.tokens = tokens
        self.cost = cost
        self.tag = tag
        self.kind = kind
    }

    /// A hit on this entry is worth recording by tag.
    @inlinable
    public var countsSavings: Bool { tokens != 0 || cost != 0 || tag != 0 }

    @inlinable
    public func isExpired(at now: Int64) -> Bool {
        expiresAt != 0 && expiresAt <= now
    }
}
