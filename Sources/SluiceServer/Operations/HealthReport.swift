import SluiceBackends

/// What `/health` says: serving (200), or which backend the node needs is down (503).
/// Embedded mode needs its SQLite file to take writes; shared mode needs its Redis connection
/// (while it is down Sluice still answers, from L1 and the Redis-down policy, but its state is
/// no longer shared: an orchestrator should know).
public struct HealthReport: Sendable {
    public var healthy: Bool
    /// "embedded" or "shared".
    public var mode: String
    /// "sqlite", "redis" or "none".
    public var backend: String
    /// Why it is not healthy ("" when it is).
    public var reason: String

    public init(cache: ExactCacheStatistics) {
        let counters = Dictionary(cache.backendCounters, uniquingKeysWith: { a, _ in a })
        backend = cache.backend
        switch cache.backend {
        case "redis":
            mode = "shared"
            // Connected, and following other instances' invalidations (without them L1 may
            // serve what another instance changed).
            let connected = counters["redis_connected"] == 1, subscribed = counters["redis_subscribed"] == 1
            healthy = connected && subscribed
            reason = !connected ? "redis is not connected" : !subscribed ? "redis invalidations are not subscribed" : ""
        case "sqlite":
            mode = "embedded"
            healthy = counters["failing"] != 1
            reason = healthy ? "" : "sqlite file is failing writes"
        default:
            mode = "embedded"
            healthy = true
            reason = ""
        }
    }

    /// The JSON body: {"status":"ok"|"unavailable","mode":...,"backend":...,"reason":...}.
    public var json: String {
        var text = "{\"status\":\"\(healthy ? "ok" : "unavailable")\",\"mode\":\"\(mode)\",\"backend\":\"\(backend)\""
        if !reason.isEmpty { text += ",\"reason\":\"\(reason)\"" }
        return text + "}"
    }
}
