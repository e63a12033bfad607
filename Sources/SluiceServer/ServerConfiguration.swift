import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// Everything `sluice serve` can be told. Defaults are the embedded single-node mode; flags,
/// environment and files are read by the executable and end up here.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 7379
    /// The operating port (metrics, health, dashboard) on the same address; 0 = none.
    public var httpPort = 7380
    /// Event-loop threads; 0 = one per core.
    public var threads = 0
    /// Directory of the embedded L2 (SQLite). nil = no L2 (L1 only).
    public var dataDirectory: String? = "./sluice-data"
    /// Shared mode only: how RL.TAKE / RL.RESERVE decide while Redis cannot answer.
    public var limitsWhenRedisDown = LimitsWhenRedisDown.local
    /// Shared mode: a Redis command not answered within this many ms fails over to the
    /// fallbacks (the connection is dropped and re-made).
    public var redisTimeoutMilliseconds: Int64 = 2000
    /// `redis://...`: shared mode (L2 in Redis, shared by every instance). nil = embedded mode.
    public var redisURL: String?
    /// `--redis` names a Redis Cluster (also detected from `INFO cluster`, or from several
    /// addresses in the URL).
    public var redisCluster = false
    /// Ms expired cache entries are kept for `CACHE.GET ... STALE ms` (stale-if-error) before
    /// they are reclaimed; 0 = reclaimed on expiry (no stale reads). Off by default: keeping
    /// data past its TTL is the operator's decision (memory, and TTLs used for retention).
    public var maxStaleMilliseconds: Int64 = 0
    /// Byte budget of L1 (keys + values + per-entry overhead).
    public var l1MaxMemory = 256 * 1024 * 1024
    public var l1Shards = 64
    public var limits = RESPLimits()
    /// Password for AUTH; nil = no AUTH needed.
    public var requirePass: String?
    /// Allow a non-loopback bind without a password.
    public var allowUnauthenticatedRemote = false
    /// FLUSHDB / FLUSHALL may run (off: they answer an error).
    public var allowFlush = false
    /// SCAN cursors of the embedded keyspace kept at once (``ScanCursors``).
    public var maxScanCursors = ScanCursors.defaultCapacity
    /// How often expired entries are looked for, in ms.
    public var sweepIntervalMilliseconds: Int64 = 100
    /// Longest lease a client may ask for, in ms.
    public var maxLeaseMilliseconds: Int64 = 10 * 60 * 1000
    /// Most live rate-limit keys; idle (full) buckets are reclaimed and do not count.
    public var maxLimitKeys = 1_000_000
    /// An unsettled RL.RESERVE expires after this many ms, charged at its estimate.
    public var reservationTTLMilliseconds: Int64 = 10 * 60 * 1000
    /// SEM.GET's MINSCORE when neither the request nor the namespace sets one. 0.7 by
    /// measurement: GPTCache's 999 pairs give 918 correct, 66 wrong, 15 misses there
    /// (`sluice-bench gptcache`).
    public var semanticMinScore: Float = 0.7
    /// SEM.GET on a namespace larger than this searches on a thread pool, not the event loop
    /// (an exact scan of 100,000 × 128 floats takes milliseconds).
    public var semanticOffloadEntries = 10_000
    /// Entries a semantic namespace holds before it evicts its oldest (SEM.CONFIG changes it).
    public var semanticMaxEntries = 100_000
    /// Most circuit breakers (names).
    public var maxBreakers = 10_000
    /// Most semantic namespaces.
    public var semanticMaxNamespaces = 10_000
    /// Most semantic entries in all namespaces together; when full, a new entry takes the place
    /// of its namespace's oldest.
    public var semanticMaxTotalEntries = 1_000_000
    /// Most memory of semantic entries together (texts, vectors, overhead); full works as above.
    public var semanticMaxMemory = 1 << 30

    /// The second stage of a semantic lookup.
    public enum SemanticVerifier: String, Sendable, CaseIterable {
        /// Numbers, negation and names (``TrapGuard``).
        case basic
        /// Short prompts aligned word by word with WordNet (``PromptVerifier``), longer ones
        /// judged as by `basic` (see docs/SEMANTIC.md).
        case wordnet
    }
    public var semanticVerifier = SemanticVerifier.wordnet

    /// Named policies (`--config`): limits, budgets, breakers, namespaces.
    public var policies = PolicySet()

    // MARK: Embedded L2 (SQLite)

    /// When a write to the embedded file is acknowledged: `everysec` (at once; synced within a
    /// second), `always` (after it is synced), `no` (at once; the OS syncs). `--fsync`.
    public var fsync = SQLiteStore.FsyncPolicy.everysec
    /// The file's bound in bytes (0: none); past it the oldest rows go. `--l2-max-bytes`.
    public var l2MaxBytes = 1 << 30
    /// Writes waiting for the disk past this many bytes hold their acknowledgements.
    public var l2MaxPendingBytes = 256 << 20

    // MARK: Connections

    /// Most client connections at once; one more is answered `-ERR max number of clients
    /// reached` and closed (`--maxclients`, as Redis). Lowered at start-up when the open-files
    /// limit cannot be raised to hold it plus ``reservedFileDescriptors``.
    public var maxClients = 10_000
    /// File descriptors kept for Sluice itself (event loops, the SQLite file, Redis, logs).
    /// (The operating port's connections, at most ``HTTPListener/maxConnections``, among them.)
    public static let reservedFileDescriptors = 128 + HTTPListener.maxConnections
    /// A client whose unsent replies exceed this many bytes is disconnected at once (0: no limit).
    public var clientOutputHardLimit = 64 * 1024 * 1024
    /// ... or exceed this many (then Sluice also stops reading its requests) for
    /// ``clientOutputSoftSeconds`` on end (`--client-output-buffer-limit hard soft seconds`).
    public var clientOutputSoftLimit = 1024 * 1024
    public var clientOutputSoftSeconds = 60
    /// Replies held for all clients together, above 64 KiB each (`--maxmemory-clients`, Redis 7's
    /// setting, which is off by default there): past it the largest holders are disconnected
    /// (0: no limit).
    public var maxMemoryClients = 1 << 30
    /// Close a connection idle for this many seconds (`--timeout`; 0: never, the default).
    public var idleTimeoutSeconds = 0
    /// How long a failed AUTH waits before its reply (successive failures on one connection
    /// queue up behind each other).
    public var authFailureDelayMilliseconds: Int64 = 100

    public init() {}

    public var isLoopbackBind: Bool {
        host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
    }

    /// Why this configuration must not start, if it must not.
    public func validationError() -> String? {
        if !isLoopbackBind && requirePass == nil && !allowUnauthenticatedRemote {
            return "binding \(host) (not loopback) without a password: set --requirepass (SLUICE_REQUIREPASS) or pass --allow-unauthenticated-remote"
        }
        if port < 0 || port > 65535 { return "port \(port) is out of range" }
        if httpPort < 0 || httpPort > 65535 { return "--http-port \(httpPort) is out of range" }
        if l1MaxMemory < 0 { return "--l1-max-memory must not be negative" }
        // Sizes past a petabyte are typos; bounded, no sum over them can overflow.
        let petabyte = 1 << 50
        if l1MaxMemory > petabyte || l2MaxBytes > petabyte || semanticMaxMemory > petabyte {
            return "--l1-max-memory, --l2-max-bytes and --sem-max-memory must be at most 1pb"
        }
        if clientOutputHardLimit > petabyte || clientOutputSoftLimit > petabyte {
            return "--client-output-buffer-limit: sizes must be at most 1pb"
        }
        if semanticMaxTotalEntries > 1 << 40 || semanticMaxNamespaces > 1 << 40 || semanticOffloadEntries > 1 << 40 {
            return "--sem-max-entries, --sem-max-namespaces and --sem-offload-entries must be at most 2^40"
        }
        if !(1...1_000_000).contains(maxClients) { return "--maxclients must be 1 to 1000000" }
        if !(0...1024).contains(threads) { return "--threads must be 0 (one per core) to 1024" }
        if clientOutputHardLimit < 0 || clientOutputSoftLimit < 0 || clientOutputSoftSeconds < 0 {
            return "--client-output-buffer-limit: sizes and seconds must not be negative"
        }
        if clientOutputSoftLimit != 0 && clientOutputSoftLimit < 1024 { return "--client-output-buffer-limit: the soft limit must be 0 (off) or at least 1kb" }
        if maxMemoryClients < 0 || maxMemoryClients > petabyte { return "--maxmemory-clients must be 0 (no limit) up to a petabyte" }
        if maxMemoryClients != 0 && maxMemoryClients < max(limits.maxBulkLength, 1 << 20) {
            return "--maxmemory-clients must be 0 (no limit) or at least --max-value-size (\(limits.maxBulkLength) bytes): one reply of the largest value would pass it"
        }
        if clientOutputSoftSeconds > 86_400 * 365 { return "--client-output-buffer-limit: seconds must be at most a year" }
        if !(0...(86_400 * 365)).contains(idleTimeoutSeconds) { return "--timeout must be 0 to 31536000 seconds (a year)" }
        if l2MaxBytes < 0 { return "--l2-max-bytes must not be negative" }
        if semanticMaxNamespaces < 1 || semanticMaxTotalEntries < 1 { return "--sem-max-namespaces and --sem-max-entries must be at least 1" }
        if semanticMaxMemory < 1 { return "--sem-max-memory must be at least 1 byte" }
        if semanticOffloadEntries < 0 { return "--sem-offload-entries must not be negative" }
        if let redisURL, case .failure(let error) = RedisEndpoint.parseList(redisURL) { return "--redis: \(error)" }
        if let problem = policies.problem() { return "--config: \(problem)" }
        return nil
    }
}
