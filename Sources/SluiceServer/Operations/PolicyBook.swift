import NIOCore
import SluiceDomain

/// The policies in force (replaced whole on a reload) and what the limiter decided under each:
/// the `sluice_limit_decisions_total` series. Decisions made with explicit numbers count under
/// "none"; a policy removed by a reload keeps its counts (a counter never goes back).
public final class PolicyBook: Sendable {
    public struct Decisions: Sendable, Hashable {
        public var allowed = 0
        public var limited = 0
        /// Allowed, with a fifth or less of a bucket left.
        public var nearLimit = 0
    }

    let current: Locked<PolicySet>
    let decisions = Locked<[String: Decisions]>([:])
    /// Amounts spent through RL.SPEND, by budget policy ("none": explicit budgets).
    let spent = Locked<[String: Double]>([:])
    /// Refusals a dry run let through, by policy.
    let dryRunRefusals = Locked<[String: Int]>([:])
    let limited = Locked(LimitedKeys())
    /// Policy names ever counted, "none" included (a bound on the label set across reloads).
    static let maxCountedPolicies = 4 * PolicySet.maxPolicies

    public init(_ policies: PolicySet = PolicySet()) {
        current = Locked(policies)
    }

    public var policies: PolicySet { current.withLock { $0 } }

    public func replace(with policies: PolicySet) {
        current.withLock { $0 = policies }
    }

    public func limit(named name: String) -> LimitSpec? {
        current.withLock { $0.limits[name] }
    }

    public func budget(named name: String) -> PolicySet.Budget? {
        current.withLock { $0.budgets[name] }
    }

    /// Whether the rate-limit policy `name` is in shadow mode.
    public func isDryRun(_ name: String) -> Bool {
        current.withLock { $0.dryRun.contains("limits." + name) }
    }

    /// Whether the budget policy `name` is in shadow mode.
    public func isDryRunBudget(_ name: String) -> Bool {
        current.withLock { $0.dryRun.contains("budgets." + name) }
    }

    /// A request a dry run allowed that enforcement would have refused: the
    /// `sluice_limit_dryrun_refusals_total` series.
    public func countDryRunRefusal(policy: String?) {
        dryRunRefusals.withLock { all in
            var name = policy ?? "none"
            if all[name] == nil && all.count >= Self.maxCountedPolicies { name = "other" }
            all[name, default: 0] += 1
        }
    }

    public var dryRunRefusalsByPolicy: [String: Int] { dryRunRefusals.withLock { $0 } }

    /// Counts one RL.TAKE / RL.RESERVE decision under `policy` (nil: explicit numbers).
    public func count(policy: String?, key: ByteBuffer, allowed: Bool, remainingRequests: Int64, remainingTokens: Int64, spec: LimitSpec) {
        // Within 20% of the limit: a fifth or less of either bucket that is in use left.
        let near = allowed && ((spec.requestsPerMinute > 0 && remainingRequests.multipliedReportingOverflow(by: 5).partialValue <= spec.requestBurst)
            || (spec.tokensPerMinute > 0 && remainingTokens.multipliedReportingOverflow(by: 5).partialValue <= spec.tokenBurst))
        count(policy: policy, key: key, allowed: allowed, near: near)
    }

    /// Counts one RL.SPEND decision: `amount` spent when allowed; `near`: the budget's spent
    /// share has reached its near fraction.
    public func countSpend(policy: String?, key: ByteBuffer, allowed: Bool, near: Bool, amount: Double) {
        count(policy: policy, key: key, allowed: allowed, near: allowed && near)
        if allowed && amount > 0 {
            spent.withLock { all in
                var name = policy ?? "none"
                if all[name] == nil && all.count >= Self.maxCountedPolicies { name = "other" }
                all[name, default: 0] += amount
            }
        }
    }

    func count(policy: String?, key: ByteBuffer, allowed: Bool, near: Bool) {
        if !allowed {
            let name = String(decoding: key.readableBytesView.prefix(200), as: UTF8.self)
            limited.withLock { $0.count(name) }
        }
        decisions.withLock { all in
            var name = policy ?? "none"
            if all[name] == nil && all.count >= Self.maxCountedPolicies { name = "other" }
            if allowed { all[name, default: Decisions()].allowed += 1 } else { all[name, default: Decisions()].limited += 1 }
            if near { all[name, default: Decisions()].nearLimit += 1 }
        }
    }

    public var decisionCounts: [String: Decisions] { decisions.withLock { $0 } }
    public var spentByPolicy: [String: Double] { spent.withLock { $0 } }
    /// The most refused keys, most first.
    public func mostLimited(_ n: Int) -> [(key: String, refused: Int)] { limited.withLock { $0.top(n) } }
}
