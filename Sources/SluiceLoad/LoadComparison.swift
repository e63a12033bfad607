/// Several rounds of the same `-t` runs, taken in turn (`sluice bench -t cache.get,llm.get
/// --rounds 7`): each command's median rate, and its rate against the first command's *in the
/// same round*. A machine's speed drifts between runs by more than the few per cent such a
/// comparison is after; pairing each round's runs cancels the drift, and the median and the
/// spread of the paired ratios say how far the figure can be trusted. The server's CPU per
/// request (INFO cpu around each run) is compared the same way: it does not depend on how fast
/// the load generator is.
public struct LoadComparison: Sendable, Encodable {
    public struct Row: Sendable, Encodable {
        public var command: String
        public var rounds: Int
        /// Operations per second: median, lowest and highest round.
        public var medianOpsPerSecond: Double
        public var minOpsPerSecond: Double
        public var maxOpsPerSecond: Double
        /// This command's rate over the first command's, paired by round: median, lowest, highest.
        public var medianRatio: Double
        public var minRatio: Double
        public var maxRatio: Double
        /// Server CPU per request (µs, from INFO cpu), median over the rounds that had it, and
        /// against the first command's, paired by round; nil when the server did not say.
        public var medianServerMicroseconds: Double?
        public var medianServerRatio: Double?
        public var minServerRatio: Double?
        public var maxServerRatio: Double?
    }

    public var rows: [Row]

    /// `rounds[r][c]`: the rate of command `c` in round `r` (every round runs the same commands,
    /// named by `commands`). Rounds with a zero rate for the first command are left out of the
    /// ratios (nothing to compare with).
    /// `serverMicroseconds[r][c]`: the server's CPU per request of that run, when it said.
    public init(commands: [String], rounds: [[Double]], serverMicroseconds: [[Double?]] = []) {
        precondition(rounds.allSatisfy { $0.count == commands.count }, "LoadComparison: every round runs every command")
        precondition(serverMicroseconds.allSatisfy { $0.count == commands.count }, "LoadComparison: every round runs every command")
        rows = commands.indices.map { c in
            let rates = rounds.map { $0[c] }
            let ratios = rounds.compactMap { $0[0] > 0 ? $0[c] / $0[0] : nil }
            var row = Row(command: commands[c], rounds: rounds.count,
                          medianOpsPerSecond: Self.median(rates), minOpsPerSecond: rates.min() ?? 0, maxOpsPerSecond: rates.max() ?? 0,
                          medianRatio: Self.median(ratios), minRatio: ratios.min() ?? 0, maxRatio: ratios.max() ?? 0)
            let cpu = serverMicroseconds.compactMap { $0[c] }
            let cpuRatios = serverMicroseconds.compactMap { round -> Double? in
                guard let mine = round[c], let first = round[0], first > 0 else { return nil }
                return mine / first
            }
            if !cpu.isEmpty { row.medianServerMicroseconds = Self.median(cpu) }
            if !cpuRatios.isEmpty {
                row.medianServerRatio = Self.median(cpuRatios)
                row.minServerRatio = cpuRatios.min()
                row.maxServerRatio = cpuRatios.max()
            }
            return row
        }
    }

    /// The middle value (the mean of the two middle ones for an even count); 0 for none.
    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// The summary table people read.
    public var table: String {
        let first = rows.first?.command ?? ""
        let cpu = rows.contains { $0.medianServerRatio != nil }
        var lines = [["command", "rounds", "median ops/s", "min ops/s", "max ops/s", "vs \(first) (median)", "min", "max"]]
        if cpu { lines[0] += ["server µs/req", "vs \(first) (median)", "min", "max"] }
        for r in rows {
            var line = [r.command, String(r.rounds), LoadReport.fixed(r.medianOpsPerSecond, 0), LoadReport.fixed(r.minOpsPerSecond, 0),
                        LoadReport.fixed(r.maxOpsPerSecond, 0), LoadReport.fixed(r.medianRatio, 3), LoadReport.fixed(r.minRatio, 3),
                        LoadReport.fixed(r.maxRatio, 3)]
            if cpu {
                line += [r.medianServerMicroseconds.map { LoadReport.fixed($0, 3) } ?? "-", r.medianServerRatio.map { LoadReport.fixed($0, 3) } ?? "-",
                         r.minServerRatio.map { LoadReport.fixed($0, 3) } ?? "-", r.maxServerRatio.map { LoadReport.fixed($0, 3) } ?? "-"]
            }
            lines.append(line)
        }
        var out = TextTable.render(lines)
        out += "ratios are paired by round (each round runs every command once, in turn)"
        out += cpu ? "; server CPU from INFO cpu around each run\n" : "\n"
        return out
    }
}
