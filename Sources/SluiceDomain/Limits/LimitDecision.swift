/// What a rate-limit check decided, with the numbers a caller needs to back off.
public struct LimitDecision: Sendable, Hashable {
    public var allowed: Bool
    /// -1: that budget is not limited.
    public var remainingRequests: Int64
    public var remainingTokens: Int64
    /// 0 when allowed; else when the same request would be allowed.
    public var retryAfter: Int64
    /// Until both buckets are full again.
    public var reset: Int64

    public init(allowed: Bool, remainingRequests: Int64, remainingTokens: Int64, retryAfter: Int64, reset: Int64) {
        self.allowed = allowed
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
        self.retryAfter = retryAfter
        self.reset = reset
    }
}
