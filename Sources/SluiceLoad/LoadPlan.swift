/// What one load run does: where to, how hard, for how long, with which requests. Read from
/// flags at the edge (`sluice bench`); every size here is bounded by ``validate()``.
public struct LoadPlan: Sendable, Encodable {
    public enum Distribution: String, Sendable, Codable, CaseIterable {
        case uniform
        case zipf
    }

    public var host = "127.0.0.1"
    public var port = 7379
    public var password: String?
    /// Connections, spread over `threads` event loops.
    public var connections = 50
    public var threads = 1
    /// Requests in flight per connection: sent together, the next batch after all replies.
    public var pipeline = 1
    /// Stop after this many requests (all connections together) …
    public var requests: Int? = 100_000
    /// … or after this many seconds, whichever comes first.
    public var seconds: Double?
    /// Keys are drawn from ranks 0 ..< keyspace.
    public var keyspace = 1
    public var distribution = Distribution.uniform
    public var zipfAlpha = 0.99
    public var valueSize = 3
    /// Commands and their weights.
    public var mix: [(LoadCommand, Int)] = [(.get, 1)]
    public var keyPrefix = "key:"
    public var namespace = "bench"
    public var leaseMilliseconds = 0
    public var limitRequestsPerMinute = 1_000_000_000
    public var limitTokensPerMinute = 1_000_000_000
    /// Fill ranks 0 ..< keyspace with SET before measuring (for GET against a full keyspace).
    public var prefill = false
    public var seed: UInt64 = 1
    /// Ask the server `INFO cpu` around the run (server CPU per request). `sluice bench` stops
    /// asking after a server did not answer it, so a silent server costs one wait, not one per run.
    public var measureServerCPU = true
    /// A connection that waits this long for a reply fails the run (a server that stopped
    /// answering must not hang the generator).
    public var idleTimeoutSeconds = 10

    public static let maxConnections = 10_000
    public static let maxPipeline = 10_000
    public static let maxRequests = 1_000_000_000
    public static let maxSeconds = 3_600.0
    public static let maxKeyspace = 1_000_000_000
    /// The Zipf table costs 8 bytes per key.
    public static let maxZipfKeyspace = 50_000_000
    public static let maxValueSize = 64 << 20
    public static let maxBatchBytes = 256 << 20
    public static let maxMixEntries = 32

    public init() {}

    /// Why the plan cannot run, or nil.
    public func validate() -> String? {
        if !(1...Self.maxConnections).contains(connections) { return "--clients must be 1...\(Self.maxConnections)" }
        if !(1...256).contains(threads) { return "--threads must be 1...256" }
        if !(1...Self.maxPipeline).contains(pipeline) { return "--pipeline must be 1...\(Self.maxPipeline)" }
        if requests == nil && seconds == nil { return "give --requests or --duration: a run is always bounded" }
        if let requests, !(1...Self.maxRequests).contains(requests) { return "--requests must be 1...\(Self.maxRequests)" }
        if let seconds, !(seconds > 0 && seconds <= Self.maxSeconds) { return "--duration must be in (0, \(Int(Self.maxSeconds))] seconds" }
        if !(1...Self.maxKeyspace).contains(keyspace) { return "--keyspace must be 1...\(Self.maxKeyspace)" }
        if distribution == .zipf && keyspace > Self.maxZipfKeyspace { return "--keyspace must be at most \(Self.maxZipfKeyspace) with --distribution zipf" }
        if !(zipfAlpha > 0 && zipfAlpha <= 10) { return "--zipf-alpha must be in (0, 10]" }
        if !(0...Self.maxValueSize).contains(valueSize) { return "--data-size must be 0...\(Self.maxValueSize)" }
        if mix.isEmpty || mix.contains(where: { $0.1 <= 0 || $0.1 > 1_000_000 }) { return "--mix weights must be 1...1000000" }
        if !(0...86_400_000).contains(leaseMilliseconds) { return "--lease must be 0...86400000 ms" }
        if !(1...65_535).contains(port) { return "--port must be 1...65535" }
        if !(1...3_600).contains(idleTimeoutSeconds) { return "--timeout must be 1...3600 seconds" }
        if mix.count > Self.maxMixEntries { return "--mix has at most \(Self.maxMixEntries) commands" }
        // What one batch of requests may hold (the prefill batches are 64 deep).
        if max(pipeline, prefill ? 64 : 1) * (valueSize + 128) > Self.maxBatchBytes {
            return "--pipeline × --data-size must stay under \(Self.maxBatchBytes >> 20) MiB"
        }
        return nil
    }

    /// `get=8,set=2` (a bare name weighs 1).
    public static func parseMix(_ text: String) throws(MixError) -> [(LoadCommand, Int)] {
        var mix: [(LoadCommand, Int)] = []
        guard text.utf8.count <= 4_096 else { throw MixError("the list is longer than 4096 bytes") }
        // Empty parts kept (and refused): "get,,set" is a typo, not a mix of two.
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "=", maxSplits: 1)
            let name = pieces.first?.trimmingSpaces() ?? ""
            guard !name.isEmpty else { throw MixError("an empty name in '\(text)'") }
            guard let command = LoadCommand(name: name) else {
                throw MixError("unknown command '\(name)' (known: \(LoadCommand.allCases.map { $0.rawValue.lowercased() }.joined(separator: ", ")))")
            }
            let weight = pieces.count == 2 ? Int(pieces[1].trimmingSpaces()) : 1
            guard let weight, weight > 0, weight <= 1_000_000 else { throw MixError("the weight of '\(name)' must be 1 to 1000000") }
            guard !mix.contains(where: { $0.0 == command }) else { throw MixError("'\(name)' is listed twice") }
            mix.append((command, weight))
        }
        guard !mix.isEmpty else { throw MixError("no command given") }
        return mix
    }

    /// Why a `-t` / `--mix` list was refused.
    public struct MixError: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    enum CodingKeys: String, CodingKey {
        case host, port, connections, threads, pipeline, requests, seconds, keyspace, distribution, zipfAlpha, valueSize, keyPrefix
        case namespace, leaseMilliseconds, prefill, seed, mixDescription
    }

    /// What `prefill` writes every key with, once each: what the mix's reads find — SET for GET
    /// and CACHE.GET (and writes), LLM.SET for LLM.GET, SEM.SET for SEM.GET.
    public var prefillWriters: [LoadCommand] {
        var writers: [LoadCommand] = []
        for (command, _) in mix {
            let writer: LoadCommand
            switch command {
            case .llmGet: writer = .llmSet
            case .semGet: writer = .semSet
            default: writer = .set
            }
            if !writers.contains(writer) { writers.append(writer) }
        }
        return writers
    }

    public var mixDescription: String { mix.map { "\($0.0.rawValue.lowercased())=\($0.1)" }.joined(separator: ",") }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(host, forKey: .host)
        try c.encode(port, forKey: .port)
        try c.encode(connections, forKey: .connections)
        try c.encode(threads, forKey: .threads)
        try c.encode(pipeline, forKey: .pipeline)
        try c.encodeIfPresent(requests, forKey: .requests)
        try c.encodeIfPresent(seconds, forKey: .seconds)
        try c.encode(keyspace, forKey: .keyspace)
        try c.encode(distribution, forKey: .distribution)
        try c.encode(zipfAlpha, forKey: .zipfAlpha)
        try c.encode(valueSize, forKey: .valueSize)
        try c.encode(keyPrefix, forKey: .keyPrefix)
        try c.encode(namespace, forKey: .namespace)
        try c.encode(leaseMilliseconds, forKey: .leaseMilliseconds)
        try c.encode(prefill, forKey: .prefill)
        try c.encode(seed, forKey: .seed)
        try c.encode(mixDescription, forKey: .mixDescription)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
