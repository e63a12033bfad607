import Histogram

/// What a run measured: per command of the mix, requests, errors, rate and latency percentiles.
public struct LoadReport: Sendable, Encodable {
    public struct CommandFigures: Sendable, Encodable {
        public var command: String
        public var requests: Int
        public var errors: Int
        public var opsPerSecond: Double
        /// Milliseconds.
        public var p50: Double
        public var p95: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
    }

    public var plan: LoadPlan
    public var seconds: Double
    public var requests: Int
    public var errors: Int
    public var opsPerSecond: Double
    public var commands: [CommandFigures]
    /// The first error reply a server sent, to say why `errors` is not 0.
    public var firstError: String?
    /// CPU seconds the server used during the run (INFO cpu before and after; nil when it does
    /// not say). It includes whatever else the server did meanwhile.
    public var serverCPUSeconds: Double?
    /// Server CPU per request, in microseconds.
    public var serverMicrosecondsPerRequest: Double? {
        guard let serverCPUSeconds, requests > 0 else { return nil }
        return serverCPUSeconds * 1e6 / Double(requests)
    }

    init(plan: LoadPlan, seconds: Double, histograms: [Histogram<UInt64>], errors: [Int], firstError: String?) {
        self.plan = plan
        self.seconds = seconds
        self.firstError = firstError
        let total = histograms.reduce(0) { $0 + Int($1.totalCount) }
        requests = total
        self.errors = errors.reduce(0, +)
        opsPerSecond = seconds > 0 ? Double(total) / seconds : 0
        func ms(_ ns: UInt64) -> Double { Double(ns) / 1e6 }
        commands = plan.mix.indices.map { i in
            let h = histograms[i]
            let n = Int(h.totalCount)
            return CommandFigures(command: plan.mix[i].0.rawValue, requests: n, errors: errors[i],
                                  opsPerSecond: seconds > 0 ? Double(n) / seconds : 0,
                                  p50: n > 0 ? ms(h.valueAtPercentile(50)) : 0, p95: n > 0 ? ms(h.valueAtPercentile(95)) : 0,
                                  p99: n > 0 ? ms(h.valueAtPercentile(99)) : 0, p999: n > 0 ? ms(h.valueAtPercentile(99.9)) : 0,
                                  max: n > 0 ? ms(h.max) : 0)
        }
    }

    /// The summary table people read.
    public var table: String {
        var rows = [["command", "requests", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"]]
        for c in commands {
            rows.append([c.command, String(c.requests), String(c.errors), Self.fixed(c.opsPerSecond, 0),
                         Self.fixed(c.p50, 3), Self.fixed(c.p95, 3), Self.fixed(c.p99, 3), Self.fixed(c.p999, 3), Self.fixed(c.max, 3)])
        }
        if commands.count > 1 {
            rows.append(["all", String(requests), String(errors), Self.fixed(opsPerSecond, 0), "", "", "", "", ""])
        }
        var out = TextTable.render(rows)
        out += "\(requests) requests in \(Self.fixed(seconds, 2)) s over \(plan.connections) connections, pipeline \(plan.pipeline), "
        out += "\(plan.keyspace) keys (\(plan.distribution.rawValue)), \(plan.valueSize)-byte values\n"
        if let cpu = serverMicrosecondsPerRequest {
            out += "server CPU: \(Self.fixed(serverCPUSeconds ?? 0, 3)) s, \(Self.fixed(cpu, 3)) µs per request (INFO cpu)\n"
        }
        if let firstError { out += "first error reply: \(firstError)\n" }
        return out
    }

    /// `value` with `digits` decimals, without Foundation's formatter.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale).rounded()
        guard abs(scaled) < 9e17 else { return String(value) }
        let whole = Int(scaled) / Int(scale)
        let fraction = abs(Int(scaled) % Int(scale))
        guard digits > 0 else { return String(whole) }
        let f = String(fraction)
        return "\(whole).\(String(repeating: "0", count: digits - f.count))\(f)"
    }
}
