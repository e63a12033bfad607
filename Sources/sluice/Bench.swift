import ArgumentParser
import Foundation
import SluiceLoad

/// `sluice bench`: load for Sluice or for Redis (the commands both speak), as redis-benchmark
/// and memtier do, with Sluice's own commands in the mix.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate load against Sluice (or Redis) and report ops/s and latency percentiles.",
        discussion: """
            Every run is bounded: by --requests (default 100000) or --duration, whichever ends first.
            Keys are <prefix><rank as 12 digits>, as redis-benchmark's key:__rand_int__.

            Examples:
              sluice bench -t get,set -P 16 --keyspace 100000             # one run per command, as redis-benchmark -t
              sluice bench --mix get=9,set=1 --distribution zipf --keyspace 1000000 --duration 30
              sluice bench --mix cache.get=1 --lease 1000 --keyspace 10000 --prefill
              sluice bench --mix rl.take=1,cb.allow=1 --clients 100 --json
              sluice bench -p 6379 -t get,set                             # the same against Redis
              sluice bench -t cache.get,llm.get -P 16 -r 1000 --prefill --rounds 8  # rates paired by round
            """
    )

    @Option(name: [.customShort("h"), .long], help: "Server host.") var host = "127.0.0.1"
    @Option(name: [.short, .long], help: "Server port.") var port = 7379
    @Option(name: [.short, .long], help: "Password (AUTH). Env: SLUICE_REQUIREPASS.") var auth: String?
    @Option(name: [.short, .customLong("clients")], help: "Connections.") var clients = 50
    @Option(name: .long, help: "Event-loop threads of the generator.") var threads = 1
    @Option(name: [.customShort("P"), .long], help: "Requests in flight per connection (pipelining).") var pipeline = 1
    @Option(name: [.customShort("n"), .long], help: "Total requests of each run (default 100000 unless --duration).") var requests: Int?
    @Option(name: .long, help: "Seconds each run lasts at most.") var duration: Double?
    @Option(name: [.customShort("r"), .long], help: "Distinct keys (ranks 0..<n).") var keyspace = 1
    @Option(name: .long, help: "Key distribution: uniform or zipf.") var distribution = "uniform"
    @Option(name: .long, help: "Zipf exponent.") var zipfAlpha = 0.99
    @Option(name: [.short, .customLong("data-size")], help: "Value size in bytes (SET, CACHE.SET, SEM.SET).") var dataSize = 3
    @Option(name: .long, help: "Weighted command mix in one run: get=9,set=1. Commands: \(LoadCommand.allCases.map { $0.rawValue.lowercased() }.joined(separator: ", ")).")
    var mix: String?
    @Option(name: [.customShort("t"), .long], help: "Commands to run one after another, each alone (as redis-benchmark -t).")
    var tests: String?
    @Option(name: .long, help: "With -t: run the list this many times, in turn (every other round backwards: for two commands and an even count, running second cancels out), and end with each command's median rate and its rate against the first command's, paired by round (the machine's drift cancels).")
    var rounds = 1
    @Option(name: .long, help: "CACHE.GET asks for a lease of this many ms on a miss (0: no lease).") var lease = 0
    @Option(name: .long, help: "Key prefix.") var keyPrefix = "key:"
    @Option(name: .long, help: "Semantic namespace for SEM.GET / SEM.SET.") var namespace = "bench"
    @Option(name: .long, help: "Seconds a connection may wait for a reply before the run fails.") var timeout = 10
    @Flag(name: .long, help: "Write every key of the keyspace first (not measured): with SET, or LLM.SET / SEM.SET for LLM.GET / SEM.GET.") var prefill = false
    @Option(name: .long, help: "Seed of the key and command choices.") var seed: UInt64 = 1
    @Flag(name: .long, help: "Print the report as JSON on stdout (the progress line still goes to stderr).") var json = false
    @Flag(name: [.short, .long], help: "No progress line.") var quiet = false

    func run() async throws {
        var base = LoadPlan()
        base.host = host
        base.port = port
        base.password = auth ?? ProcessInfo.processInfo.environment["SLUICE_REQUIREPASS"]
        base.connections = clients
        base.threads = threads
        base.pipeline = pipeline
        base.requests = requests ?? (duration == nil ? 100_000 : nil)
        base.seconds = duration
        base.keyspace = keyspace
        guard let d = LoadPlan.Distribution(rawValue: distribution) else { throw ValidationError("--distribution is uniform or zipf") }
        base.distribution = d
        base.zipfAlpha = zipfAlpha
        base.valueSize = dataSize
        base.leaseMilliseconds = lease
        base.keyPrefix = keyPrefix
        base.namespace = namespace
        base.seed = seed
        base.idleTimeoutSeconds = timeout

        var plans: [LoadPlan] = []
        if let tests {
            guard mix == nil else { throw ValidationError("give --mix or -t, not both") }
            guard (1...1000).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 1000") }
            let each: [(LoadCommand, Int)]
            do { each = try LoadPlan.parseMix(tests) } catch { throw ValidationError("-t: \(error)") }
            for round in 0..<rounds {
                // Every other round runs the list backwards (A B, B A, ...): a command's place in
                // the round (what ran just before it, what the server was left doing) cancels
                // over the rounds as the machine's drift does.
                for (command, _) in round % 2 == 0 ? each : each.reversed() {
                    var p = base
                    p.mix = [(command, 1)]
                    plans.append(p)
                }
            }
        } else {
            guard rounds == 1 else { throw ValidationError("--rounds takes -t (commands run in turn)") }
            let parsed: [(LoadCommand, Int)]
            do { parsed = try LoadPlan.parseMix(mix ?? "get") } catch { throw ValidationError("--mix: expected name=weight,...: \(error)") }
            base.mix = parsed
            plans.append(base)
        }
        // Each command of the first round fills the keys it reads (later rounds find them).
        if prefill { for i in 0..<(plans.count / rounds) { plans[i].prefill = true } }
        for plan in plans { if let why = plan.validate() { throw ValidationError(why) } }

        var reports: [LoadReport] = []
        var serverAnswersCPU = true
        for var plan in plans {
            plan.measureServerCPU = serverAnswersCPU
            let label = plan.mixDescription
            let showProgress = !quiet
            let total = plan.requests
            let line: @Sendable (LoadGenerator.Progress) -> Void = { p in
                var line = "\r\(label): \(Int(p.currentRate)) ops/s, \(p.completed) done"
                if let total { line += " (\(min(100, p.completed * 100 / max(total, 1)))%)" }
                if p.errors > 0 { line += ", \(p.errors) errors" }
                line += ", \(Int(p.elapsedSeconds)) s   "
                FileHandle.standardError.write(Data(line.utf8))
            }
            let report = try await LoadGenerator.run(plan, progress: showProgress ? line : nil)
            if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            reports.append(report)
            // A server that did not answer INFO cpu is not asked again (each try waits).
            if report.serverCPUSeconds == nil { serverAnswersCPU = false }
            if !json { print(report.table) }
        }
        var comparison: LoadComparison?
        if rounds > 1 {
            let perRound = reports.count / rounds
            let commands = reports.prefix(perRound).map { $0.plan.mix.first.map { $0.0.rawValue.lowercased() } ?? "" }
            // Each round's reports in the first round's order.
            let inOrder = (0..<rounds).map { r in
                let round = Array(reports[(r * perRound)..<((r + 1) * perRound)])
                return r % 2 == 0 ? round : round.reversed()
            }
            let rates = inOrder.map { $0.map(\.opsPerSecond) }
            let cpu = inOrder.map { $0.map(\.serverMicrosecondsPerRequest) }
            comparison = LoadComparison(commands: commands, rounds: rates, serverMicroseconds: cpu)
            if !json { print(comparison!.table) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let all: AnyReports = comparison.map { .compared(runs: reports, comparison: $0) }
                ?? (reports.count == 1 ? .one(reports[0]) : .many(reports))
            let data = try encoder.encode(all)
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// One report as an object, several (`-t get,set`) as an array, rounds (`--rounds`) as
/// `{"runs": [...], "comparison": {...}}`.
enum AnyReports: Encodable {
    case one(LoadReport)
    case many([LoadReport])
    case compared(runs: [LoadReport], comparison: LoadComparison)

    enum Keys: String, CodingKey { case runs, comparison }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .one(let r):
            var c = encoder.singleValueContainer()
            try c.encode(r)
        case .many(let rs):
            var c = encoder.singleValueContainer()
            try c.encode(rs)
        case .compared(let runs, let comparison):
            var c = encoder.container(keyedBy: Keys.self)
            try c.encode(runs, forKey: .runs)
            try c.encode(comparison, forKey: .comparison)
        }
    }
}
