import CoreMetrics
import Histogram
import NIOCore

/// Each command's latency histogram (its count is the command's request count), recorded by
/// the connection handler from the moment a request is dispatched to the moment its reply is
/// ready. Unknown verbs share one series ("unknown"), so a client cannot grow the label set.
/// Every event loop also keeps a ``LatencyWindow`` of all its commands, which the dashboard
/// turns into p50/p95/p99 once a second.
public final class CommandMetrics: Sendable {
    public static let metricName = "sluice_command_duration_seconds"
    /// Index = the command's index in the ``CommandTable``; the last one is "unknown".
    let timers: [CoreMetrics.Timer]
    let windows: [ObjectIdentifier: LatencyWindow]
    let loops: [any EventLoop]

    public init(table: CommandTable, factory: any MetricsFactory, loops: [any EventLoop]) {
        timers = (table.commands.map(\.name) + ["unknown"]).map {
            CoreMetrics.Timer(label: Self.metricName, dimensions: [("command", $0)], factory: factory)
        }
        self.loops = loops
        windows = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0), LatencyWindow()) })
    }

    var unknownIndex: Int { timers.count - 1 }

    /// The latency window of `loop` (nil for a loop not of this node's group, e.g. in tests).
    func window(for loop: any EventLoop) -> LatencyWindow? {
        windows[ObjectIdentifier(loop)]
    }

    @inline(__always)
    func record(command index: Int, nanoseconds: UInt64, window: LatencyWindow?) {
        timers[index].recordNanoseconds(Int64(truncatingIfNeeded: nanoseconds))
        window?.record(nanoseconds: nanoseconds)
    }

    /// Every loop's latencies since the last call, merged (each taken on its own loop).
    func takeLatencies() async -> Histogram<UInt64> {
        var merged = LatencyWindow.empty()
        for loop in loops {
            guard let window = window(for: loop), let taken = try? await loop.submit({ window.take() }).get() else { continue }
            merged.add(taken)
        }
        return merged
    }
}
