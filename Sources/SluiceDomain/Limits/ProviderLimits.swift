/// What a provider said about its own limits (`RL.SYNC`): the counts of its
/// `x-ratelimit-remaining-requests` / `-tokens` headers (nil: not reported), the ms until its
/// window resets, and optionally the key's limits (so a key whose bucket was reclaimed as full
/// can still be aligned).
public struct ProviderLimits: Sendable, Hashable {
    public var remainingRequests: Int64?
    public var remainingTokens: Int64?
    public var reset: Int64
    public var spec: LimitSpec?

    public init(remainingRequests: Int64?, remainingTokens: Int64?, reset: Int64, spec: LimitSpec? = nil) {
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
        self.reset = reset
        self.spec = spec
    }
}
