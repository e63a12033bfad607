import Histogram
import NIOCore
import NIOPosix
import SluiceDomain

/// Runs a ``LoadPlan`` against a server and reports what it measured.
public enum LoadGenerator {
    /// What the progress line shows, once a second.
    public struct Progress: Sendable {
        public var completed: Int
        public var errors: Int
        public var elapsedSeconds: Double
        /// Requests per second over the last interval.
        public var currentRate: Double
    }

    public static func run(_ plan: LoadPlan, progress: (@Sendable (Progress) -> Void)? = nil) async throws -> LoadReport {
        if let why = plan.validate() { throw LoadError(message: why) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: plan.threads)
        do {
            let report = try await run(plan, on: group, progress: progress)
            try await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    static func run(_ plan: LoadPlan, on group: MultiThreadedEventLoopGroup, progress: (@Sendable (Progress) -> Void)?) async throws -> LoadReport {
        let keys = KeyPicker(plan: plan)
        if plan.prefill {
            for writer in plan.prefillWriters {
                var fill = plan
                fill.mix = [(writer, 1)]
                fill.requests = plan.keyspace
                fill.seconds = nil
                fill.pipeline = max(plan.pipeline, 64)
                _ = try await measure(fill, keys: keys, prefill: true, on: group, progress: nil)
            }
        }
        // The server's CPU around the measured run only (not the prefill).
        let cpuBefore = plan.measureServerCPU ? await ServerCPUProbe.cpuSeconds(plan, on: group.next()) : nil
        var report = try await measure(plan, keys: keys, prefill: false, on: group, progress: progress)
        if let cpuBefore, let cpuAfter = await ServerCPUProbe.cpuSeconds(plan, on: group.next()) {
            let used = cpuAfter - cpuBefore
            if used.isFinite && used >= 0 { report.serverCPUSeconds = used }
        }
        return report
    }

    static func measure(_ plan: LoadPlan, keys: KeyPicker, prefill: Bool, on group: MultiThreadedEventLoopGroup,
                        progress: (@Sendable (Progress) -> Void)?) async throws -> LoadReport {
        let start = NIODeadline.now()
        let budget = LoadBudget(requests: plan.requests, seconds: plan.seconds, startingAt: start)
        var ticker: RepeatedTask?
        if let progress {
            let last = ProgressMark()
            ticker = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let done = budget.completed.load(ordering: .relaxed)
                let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
                let rate = Double(done - last.swap(done))
                progress(Progress(completed: done, errors: budget.errors.load(ordering: .relaxed), elapsedSeconds: elapsed, currentRate: rate))
            }
        }
        defer { ticker?.cancel() }
        let shared = LoadConnectionHandler.Shared(plan: plan)
        let loops = Array(group.makeIterator())
        let recorders = loops.map { _ in LoadConnectionHandler.Recorder(commands: plan.mix.count) }
        var futures: [EventLoopFuture<Void>] = []
        for i in 0..<plan.connections {
            let loop = loops[i % loops.count]
            let recorder = recorders[i % loops.count]
            let done = loop.makePromise(of: Void.self)
            done.futureResult.whenFailure { _ in budget.cancel() }
            let seed = plan.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i)
            let idle = TimeAmount.seconds(Int64(plan.idleTimeoutSeconds))
            let connect = ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(
                            LoadConnectionHandler(plan: plan, budget: budget, keys: keys, prefill: prefill, seed: seed, shared: shared,
                                                  recorder: recorder, done: done))
                    }
                }
                .connectTimeout(.seconds(5))
                .connect(host: plan.host, port: plan.port)
            connect.whenFailure { done.fail(LoadError(message: "cannot connect to \(plan.host):\(plan.port): \($0)")) }
            futures.append(done.futureResult)
        }
        var failure: (any Error)?
        for future in futures {
            do { try await future.get() } catch { failure = failure ?? error }
        }
        var histograms = plan.mix.map { _ in Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three) }
        var errors = plan.mix.map { _ in 0 }
        var firstError: String?
        for recorder in recorders {
            for i in histograms.indices {
                histograms[i].add(recorder.histograms[i])
                errors[i] += recorder.errors[i]
            }
            firstError = firstError ?? recorder.firstError
        }
        if let failure { throw failure }
        let seconds = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return LoadReport(plan: plan, seconds: seconds, histograms: histograms, errors: errors, firstError: firstError)
    }
}
