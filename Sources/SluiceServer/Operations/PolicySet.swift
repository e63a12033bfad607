import SluiceDomain

/// Named policies from the config file (`--config`): clients say `RL.TAKE key POLICY gpt-4o`
/// instead of passing numbers, and operators change the numbers in one place (`SIGHUP`
/// reloads them). Breaker and namespace policies are applied to the breakers and namespaces of
/// those names when the node starts and on each reload.
public struct PolicySet: Sendable, Equatable {
    /// Spend budgets for `RL.SPEND key amount POLICY name`.
    public struct Budget: Sendable, Hashable {
        public var budget: Money
        public var period: BudgetPeriod
        /// The fraction of the budget from which a spend is "near" (reply field, log, metric).
        public var near: Double

        public init(budget: Money, period: BudgetPeriod = .day, near: Double = 0.8) {
            self.budget = budget
            self.period = period
            self.near = near
        }
    }

    /// A semantic namespace's settings, as `SEM.CONFIG` sets them.
    public struct Namespace: Sendable, Hashable {
        public var minScore: Float?
        public var maxEntries: Int?

        public init(minScore: Float? = nil, maxEntries: Int? = nil) {
            self.minScore = minScore
            self.maxEntries = maxEntries
        }
    }

    /// Rate-limit policies (`RL.TAKE`, `RL.RESERVE`): rpm, tpm and the bucket sizes.
    public var limits: [String: LimitSpec] = [:]
    public var budgets: [String: Budget] = [:]
    /// Circuit-breaker policies, applied to the breaker of the same name.
    public var breakers: [String: BreakerPolicyChange] = [:]
    public var namespaces: [String: Namespace] = [:]
    /// Limit and budget policies in shadow mode (`dryrun = true`), as `limits.NAME` and
    /// `budgets.NAME`: decided and counted as usual, always allowed.
    public var dryRun: Set<String> = []

    /// Most policies of each kind (each is a metrics label).
    public static let maxPolicies = 1_000

    public init() {}

    public var isEmpty: Bool { limits.isEmpty && budgets.isEmpty && breakers.isEmpty && namespaces.isEmpty }

    /// Why these policies must not be used, if so: the same bounds as the commands' arguments.
    public func problem() -> String? {
        for (kind, count) in [("limits", limits.count), ("budgets", budgets.count), ("breakers", breakers.count), ("namespaces", namespaces.count)]
            where count > Self.maxPolicies {
            return "\(kind): \(count) policies, at most \(Self.maxPolicies)"
        }
        let names = Array(limits.keys) + Array(budgets.keys) + Array(breakers.keys) + Array(namespaces.keys)
        if let bad = names.first(where: {
            $0.isEmpty || $0.utf8.count > 200 || $0.contains(where: { $0.isWhitespace || $0 == "\"" })
                || $0.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        }) {
            return "policy name '\(bad)': 1 to 200 characters, no spaces or quotes"
        }
        for (name, spec) in limits.sorted(by: { $0.key < $1.key }) {
            for (what, value) in [("rpm", spec.requestsPerMinute), ("tpm", spec.tokensPerMinute), ("request_burst", spec.requestBurst),
                                  ("token_burst", spec.tokenBurst)] where value < 0 || value > TokenBucket.maxTokens {
                return "limits.\(name).\(what) must be between 0 and \(TokenBucket.maxTokens)"
            }
            if spec.requestsPerMinute == 0 && spec.tokensPerMinute == 0 { return "limits.\(name): set rpm, tpm or both" }
            if spec.requestsPerMinute > 0 && spec.requestBurst < 1 { return "limits.\(name).request_burst must be at least 1 when rpm is set" }
            if spec.tokensPerMinute > 0 && spec.tokenBurst < 1 { return "limits.\(name).token_burst must be at least 1 when tpm is set" }
        }
        for (name, budget) in budgets.sorted(by: { $0.key < $1.key }) {
            if case .rolling(let ms) = budget.period, !(1...TokenBucket.maxTokens).contains(ms) {
                return "budgets.\(name).period_ms must be 1 to \(TokenBucket.maxTokens)"  // as RL.SPEND's PERIOD
            }
            if !(budget.near > 0 && budget.near <= 1) { return "budgets.\(name).near must be above 0 and at most 1" }
        }
        for (name, change) in breakers.sorted(by: { $0.key < $1.key }) {
            for (what, value) in [("window", change.window), ("min_calls", change.minimumCalls), ("probes", change.probes)] {
                if let value, !BreakerPolicy.countRange.contains(value) {
                    return "breakers.\(name).\(what) must be \(BreakerPolicy.countRange.lowerBound) to \(BreakerPolicy.countRange.upperBound)"
                }
            }
            for (what, value) in [("failure_rate", change.failureRate), ("slow_rate", change.slowCallRate)] {
                if let value, !(value > 0 && value <= 1) { return "breakers.\(name).\(what) must be above 0 and at most 1" }
            }
            for (what, value) in [("slow_ms", change.slowCallMilliseconds), ("open_ms", change.openMilliseconds)] {
                if let value, !BreakerPolicy.millisecondsRange.contains(value) {
                    return "breakers.\(name).\(what) must be 1 to \(BreakerPolicy.millisecondsRange.upperBound) ms"
                }
            }
        }
        for (name, ns) in namespaces.sorted(by: { $0.key < $1.key }) {
            if let s = ns.minScore, !(s >= -1 && s <= 1) { return "namespaces.\(name).min_score must be from -1 to 1" }
            if let n = ns.maxEntries, !(1...10_000_000).contains(n) { return "namespaces.\(name).max_entries must be 1 to 10000000" }
        }
        return nil
    }
}
