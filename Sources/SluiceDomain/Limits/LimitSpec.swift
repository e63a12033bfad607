/// Requests-per-minute and tokens-per-minute limits of one key, as the caller states them on
/// each request (like redis-cell). 0 = that budget is not limited.
public struct LimitSpec: Sendable, Hashable {
    public var requestsPerMinute: Int64
    public var tokensPerMinute: Int64
    /// Bucket sizes; default = the per-minute budget.
    public var requestBurst: Int64
    public var tokenBurst: Int64

    public init(requestsPerMinute: Int64, tokensPerMinute: Int64, requestBurst: Int64? = nil, tokenBurst: Int64? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.requestBurst = requestBurst ?? requestsPerMinute
        self.tokenBurst = tokenBurst ?? tokensPerMinute
    }

    /// Why asking these buckets for one request and `tokens` tokens can never succeed, if so.
    public func impossibility(tokens: Int64) -> LimitError? {
        if requestsPerMinute > 0 && requestBurst < 1 { return .exceedsBurst(asked: 1, burst: requestBurst) }
        if tokensPerMinute > 0 && tokens > tokenBurst { return .exceedsBurst(asked: tokens, burst: tokenBurst) }
        return nil
    }
}
