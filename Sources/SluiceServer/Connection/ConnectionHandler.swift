import Logging
import NIOCore
import SluiceDomain
import SluiceProtocol

/// One client connection, as a thin adapter: bytes go through the ``RESPRequestParser``,
/// requests through the ``CommandTable``, and the ``ConnectionStateMachine`` says where each
/// reply goes and when to flush, pause reading or close. All replies of a read batch leave with
/// one flush.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Write out early when a batch's ready replies grow past this many bytes.
    static let flushThreshold = 64 * 1024
    static let maxPendingReplies = 512

    /// What every connection of a listener shares.
    struct Settings: Sendable {
        var table: CommandTable
        var counters: ServerCounters
        var clock: any TimeSource
        var logger: Logger
        var limits: RESPLimits
        var requiresAuth: Bool
        var maxClients: Int
        /// 0: no limit.
        var outputHardLimit: Int
        /// Replies queued behind pending ones (and the socket's high-water mark) stop here.
        var outputSoftLimit: Int
        /// Disconnect a client whose output stays above the soft limit this long (0: never).
        var outputSoftSeconds: Int
        /// Per-command latency histograms (nil: none kept).
        var metrics: CommandMetrics? = nil
    }

    private let settings: Settings
    private var parser: RESPRequestParser
    private var state: ConnectionStateMachine
    private let session: Session
    /// Bytes read but not yet parsed (a partial request, or requests waiting for room).
    private var input: ByteBuffer?
    /// The client sent all it will (half-close) or the server is shutting down: run what was
    /// read, answer it, then close.
    private var inputEnded = false
    /// A flush is queued on the event loop (replies arriving together go out in one write).
    private var flushScheduled = false
    /// Inside ``process(context:flushNow:)``: replies completing inline must not start another.
    private var processing = false
    /// Closes the connection if its output stays above the soft limit for too long.
    private var softLimitTimer: Scheduled<Void>?
    private var commandsSinceReport = 0
    /// What this connection counts in the replies held for all clients (``ClientOutputMemory``).
    private var outputAccounted = 0
    /// While it counts anything: reports again every second, so that a client that has
    /// stopped reading (no flush, no writability change) can still be found the largest.
    private var outputReportTimer: RepeatedTask?
    /// When it started counting (monotonic ms; meaningful while ``outputAccounted`` > 0).
    private var countingSince: Int64 = 0
    /// This connection's loop's latency window (set when it becomes active).
    private var latency: LatencyWindow?
    private var now = Timestamp(wall: 0, monotonic: 0)

    init(settings: Settings) {
        self.settings = settings
        // Until AUTH, only small requests (a password is needed only when one is set).
        self.parser = RESPRequestParser(limits: settings.requiresAuth ? .beforeAuth : settings.limits)
        self.state = ConnectionStateMachine(maxPendingReplies: Self.maxPendingReplies,
                                            maxQueuedBytes: max(settings.outputSoftLimit, Self.flushThreshold))
        self.session = Session(id: settings.counters.newClientID(), authenticated: !settings.requiresAuth)
    }

    var counters: ServerCounters { settings.counters }

    func channelActive(context: ChannelHandlerContext) {
        latency = settings.metrics?.window(for: context.eventLoop)
        let connected = counters.connectedClients.add(1, ordering: .relaxed).newValue
        counters.totalConnections.add(1, ordering: .relaxed)
        context.fireChannelActive()
        if connected > settings.maxClients {
            // As Redis: say why, and close, before the process runs out of file descriptors.
            counters.rejectedConnections.add(1, ordering: .relaxed)
            input = nil
            _ = state.stopReading()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "-ERR max number of clients reached\r\n"))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.connectedClients.subtract(1, ordering: .relaxed)
        _ = counters.clientOutput.report(&outputAccounted, holding: 0)
        reportCommands()
        state.closed()
        session.closed()
        input = nil
        softLimitTimer?.cancel()
        outputReportTimer?.cancel()
        outputReportTimer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard state.lifecycle == .reading, !inputEnded else { return }
        if input == nil {
            input = bytes
        } else {
            input!.writeBuffer(&bytes)
        }
        now = settings.clock.timestamp()
        process(context: context, flushNow: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client sent all it will send: answer what is there, then close.
            endInput(context: context)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: read nothing more, answer every request already read, close.
            try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            endInput(context: context)
            return
        }
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // --timeout: idle long enough, and nothing owed to it (half a request sent and then
            // silence is idle too, as in Redis: it would hold a client slot for ever).
            if state.pendingReplies == 0 {
                counters.idleDisconnects.add(1, ordering: .relaxed)
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable {
            softLimitTimer?.cancel()
            softLimitTimer = nil
        } else if softLimitTimer == nil && settings.outputSoftSeconds > 0 {
            // The client is not reading its replies; if it still is not in a while, let it go.
            let channel = context.channel
            let counters = counters
            softLimitTimer = context.eventLoop.scheduleTask(in: .seconds(Int64(settings.outputSoftSeconds))) {
                guard channel.isActive, !channel.isWritable else { return }
                counters.outputLimitDisconnects.add(1, ordering: .relaxed)
                channel.close(promise: nil)
            }
        }
        perform(state.writabilityChanged(writable: writable), context: context, flushNow: true)
        // Drained below the low-water mark, or filled past the high one: what it holds changed.
        enforceOutputLimits(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settings.logger.debug("connection error", metadata: ["error": "\(error)", "client": "\(session.id)"])
        context.close(promise: nil)
    }

    // MARK: Requests

    /// Runs the buffered requests while there is room for their replies.
    private func process(context: ChannelHandlerContext, flushNow: Bool) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while runBatch(context: context, flushNow: flushNow) {
            now = settings.clock.timestamp()
        }
    }

    /// One batch; true when it ended with room again and input left (run another).
    private func runBatch(context: ChannelHandlerContext, flushNow: Bool) -> Bool {
        guard var buffer = input, var out = state.startBatch() else { return false }
        input = nil
        // Locals for the whole batch: class properties passed inout would pay a dynamic
        // exclusivity check on every request.
        var parser = self.parser
        var needsMoreBytes = false
        // One clock read per command: each command is timed from where the previous one ended
        // (its own request's parsing included) — two reads per command were 6% of a CACHE.GET.
        var clock = metricsClock
        while state.canRunRequest && (state.tailIsOutput || state.queuedBytes + out.buffer.readableBytes < state.maxQueuedBytes) {
            let request: RESPRequest
            do {
                guard let next = try parser.next(from: &buffer) else {
                    needsMoreBytes = true
                    break
                }
                request = next
            } catch {
                counters.protocolErrors.add(1, ordering: .relaxed)
                out.writeRESPError("ERR Protocol error: " + error.message)
                _ = state.stopReading()
                break
            }
            switch request {
            case .command(let command):
                execute(command, into: &out, context: context, clock: &clock)
                if parser.limits.overLimitIsFatal && session.authenticated {
                    parser.limits = settings.limits  // authenticated: the configured limits from now on
                }
            case .rejected(let rejection):
                counters.rejectedRequests.add(1, ordering: .relaxed)
                session.transaction?.abort()
                out.writeRESPError("ERR " + rejection.message)
                clock = metricsClock  // no command's time
            }
            if state.tailIsOutput && out.buffer.readableBytes >= Self.flushThreshold {
                reportCommands()  // counted before these replies leave too
                write(out.buffer, context: context)
                ConnectionStateMachine.reuse(&out.buffer)
                clock = metricsClock  // the write is no command's time
                // The limits hold for a batch's early writes too (a batch of large replies
                // otherwise passed the hard limit twice over before its end).
                enforceOutputLimits(context: context)
                // A client that does not read its replies stops the batch here (see
                // channelWritabilityChanged); what it sent stays unread in its socket.
                if !context.channel.isWritable { _ = state.writabilityChanged(writable: false) }
            }
        }
        self.parser = parser
        let inputLeft = state.lifecycle == .reading && !needsMoreBytes && buffer.readableBytes > 0
        if state.lifecycle == .reading && buffer.readableBytes > 0 { input = buffer }
        // Counted before the batch's replies leave: a client that saw its reply and asks STATS
        // on another connection finds its command counted.
        reportCommands()
        let action = state.finishBatch(tail: out, inputLeft: inputLeft)
        perform(action, context: context, flushNow: flushNow)
        if inputEnded && !inputLeft {
            // All that was read has run (what is left is an incomplete request that will not end).
            input = nil
            perform(state.stopReading(), context: context, flushNow: true)
            return false
        }
        // Stopped for want of room, and the replies that arrived meanwhile made some: go on.
        return inputLeft && action.runBufferedInput && input != nil
    }

    /// Now, in uptime ns, for the latency histograms (0, and no clock read, without them).
    private var metricsClock: UInt64 { settings.metrics == nil ? 0 : NIODeadline.now().uptimeNanoseconds }

    /// `clock`: when this command's time starts (the previous one's end, or the batch's start,
    /// in uptime ns; 0 without metrics); set to when it ended.
    private func execute(_ command: RESPCommand, into out: inout RESPWriter, context: ChannelHandlerContext, clock: inout UInt64) {
        commandsSinceReport += 1
        let table = settings.table
        let metrics = settings.metrics
        let started = clock
        var arguments = command.arguments
        guard let verb = arguments.next(), let index = table.lookup(verb) else {
            session.transaction?.abort()
            writeUnknown(command, into: &out)
            if let metrics {
                clock = NIODeadline.now().uptimeNanoseconds
                metrics.record(command: metrics.unknownIndex, nanoseconds: clock &- started, window: latency)
            }
            return
        }
        var deferredReply = false
        defer {
            if let metrics {
                clock = NIODeadline.now().uptimeNanoseconds
                // Replies that come later are timed when they arrive (below).
                if !deferredReply { metrics.record(command: index, nanoseconds: clock &- started, window: latency) }
            }
        }
        guard table.commands[index].acceptsArgumentCount(command.count) else {
            session.transaction?.abort()
            out.writeRESPError(CommandError.wrongArity(table.commands[index].name).line)
            return
        }
        guard session.authenticated || table.commands[index].allowedBeforeAuth else {
            out.writeRESPError("NOAUTH Authentication required.")
            return
        }
        // Inside MULTI: queued for EXEC, except the commands that end or shape the transaction.
        if session.transaction != nil, !table.commands[index].runsInsideMulti {
            switch session.transaction!.queue(command) {
            case .queued: out.writeRESPSimpleString("QUEUED")
            case .full(let why): out.writeRESPError("ERR " + why + "; the transaction is discarded at EXEC")
            }
            return
        }
        var ctx = CommandContext(arguments: arguments, argumentCount: command.count - 1, time: now,
                                 eventLoop: context.eventLoop, session: session, table: table,
                                 name: table.commands[index].name)
        let result: CommandResult
        do {
            result = try table.commands[index].run(&ctx, &out)
        } catch {
            out.writeRESPError(error.line)
            return
        }
        switch result {
        case .done:
            break
        case .close:
            _ = state.stopReading()
        case .later(let future), .laterInOrder(let future):
            deferredReply = true
            var inOrder = false
            if case .laterInOrder = result { inOrder = true }
            let sequence = state.replyDeferred(tail: &out, inOrder: inOrder)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            // A future that is already complete calls back right here; the state machine only
            // records it then, and the batch's end writes it out in order.
            future.whenComplete { result in
                let (handler, context) = loopBound.value
                metrics?.record(command: index, nanoseconds: NIODeadline.now().uptimeNanoseconds &- started, window: handler.latency)
                // What ran to make this reply (EXEC's queued commands after a slow one) is counted
                // before it leaves, as a batch's are.
                handler.reportCommands()
                handler.perform(handler.state.replyArrived(sequence: sequence, result), context: context, flushNow: true)
                // Arrived behind a slower one, it is held (and counted) until that one comes.
                if handler.state.queuedBytes > 0 { handler.enforceOutputLimits(context: context) }
            }
        }
    }

    private func writeUnknown(_ command: RESPCommand, into out: inout RESPWriter) {
        var arguments = command.arguments
        let verb = arguments.next().map(\.text) ?? ""
        var message = "ERR unknown command '\(verb.prefix(128))', with args beginning with:"
        var shown = 0
        while let arg = arguments.next(), shown < 3 {
            message += " '\(arg.text.prefix(64))'"
            shown += 1
        }
        out.writeRESPError(message)
    }

    /// No more input will come (half-close, shutdown): run what is buffered, then close once
    /// every reply is out.
    private func endInput(context: ChannelHandlerContext) {
        guard !inputEnded else { return }
        inputEnded = true
        if input == nil {
            perform(state.stopReading(), context: context, flushNow: true)
        } else {
            now = settings.clock.timestamp()
            process(context: context, flushNow: true)
        }
        // Nobody will wait for a slot on a connection that is ending: waiting RL.ACQUIREs are
        // answered now (else a shutdown would wait out their WAIT).
        session.closed()
    }

    // MARK: Doing what the state machine says

    /// `flushNow`: outside a read (a reply arrived, the client half-closed): write out now (one
    /// flush per event-loop tick); inside a read, `channelReadComplete` flushes.
    private func perform(_ action: ConnectionStateMachine.Action, context: ChannelHandlerContext, flushNow: Bool) {
        if let reading = action.setReading, !inputEnded {
            try? context.channel.syncOptions?.setOption(.autoRead, value: reading)
        }
        if action.close {
            let pending = state.takeOutput()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(pending)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if action.flush && flushNow {
            // Replies arriving together go out in one write at the end of the tick — unless
            // they are large already: waiting then saves nothing, and every connection's
            // output would grow until its turn came (a thousand connections' 3 MB answers read
            // from the file held gigabytes behind the queued flushes).
            if state.output.buffer.readableBytes >= Self.flushThreshold { flush(context: context) } else { scheduleFlush(context: context) }
        }
        if action.runBufferedInput && input != nil && !processing {
            now = settings.clock.timestamp()
            process(context: context, flushNow: flushNow)
        }
    }

    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loopBound.value
            handler.flushScheduled = false
            handler.flush(context: context)
        }
    }

    private func flush(context: ChannelHandlerContext) {
        guard state.output.buffer.readableBytes > 0, context.channel.isActive else {
            // Nothing ready, but replies may wait behind a slower one: they count too.
            if state.queuedBytes > 0 || outputAccounted > 0 { enforceOutputLimits(context: context) }
            return
        }
        let bytes = state.takeOutput()
        write(bytes, context: context)
        state.recycleOutput(consume bytes)
        enforceOutputLimits(context: context)
    }

    /// Writes and flushes `bytes`. When this connection holds enough to count in the replies
    /// held for all clients, it reports again once the write has gone to the socket: a
    /// connection that drains is counted down as it drains, not at its next flush (the socket's
    /// writability events come only at its water marks, which follow the soft limit).
    private func write(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        guard outputAccounted > 0 || bytes.readableBytes > ClientOutputMemory.floor else {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.enforceOutputLimits(context: context)
        }
    }

    /// More unsent output than the hard limit (a client that does not read, replies queued
    /// behind slow ones): disconnect now, as Redis's client-output-buffer-limit does. And the
    /// bytes this connection holds reported to the bound on all clients' (`--maxmemory-clients`),
    /// which may say that it is among the largest holders when all hold too much: disconnect it
    /// too, as Redis 7 evicts clients.
    private func enforceOutputLimits(context: ChannelHandlerContext) {
        guard state.lifecycle != .closed, context.channel.isActive,
              let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes) else { return }
        let holding = buffered + state.queuedBytes
        if settings.outputHardLimit > 0 && holding > settings.outputHardLimit {
            let total = counters.outputLimitDisconnects.add(1, ordering: .relaxed).newValue
            logDisconnect("client disconnected: output buffer over the hard limit", holding: holding, total: total)
            context.close(promise: nil)
            return
        }
        // Nothing to count, and nothing counted: the common case costs no clock read.
        guard holding > ClientOutputMemory.floor || outputAccounted > 0 else { return }
        let now = settings.clock.timestamp().monotonic
        if outputAccounted == 0 { countingSince = now }
        let mayGo = now - countingSince >= ClientOutputMemory.minimumHoldMilliseconds
        if counters.clientOutput.report(&outputAccounted, holding: holding, mayGo: mayGo) {
            let total = counters.clientMemoryEvictions.add(1, ordering: .relaxed).newValue
            logDisconnect("client disconnected: replies held for all clients over --maxmemory-clients", holding: holding, total: total)
            context.close(promise: nil)
            return
        }
        if outputAccounted > 0 && outputReportTimer == nil {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            outputReportTimer = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let (handler, context) = loopBound.value
                handler.enforceOutputLimits(context: context)
            }
        } else if outputAccounted == 0, let timer = outputReportTimer {
            timer.cancel()
            outputReportTimer = nil
        }
    }

    /// At most one line a second server-wide, with the running total: thousands of clients
    /// disconnected together must not flood the log.
    private func logDisconnect(_ message: Logger.Message, holding: Int, total: Int) {
        guard ServerCounters.firstThisSecond(counters.outputLimitLoggedSecond, settings.clock.timestamp().monotonic / 1000) else { return }
        settings.logger.info(message, metadata: [
            "client": "\(session.id)", "bytes": "\(holding)", "all_clients_bytes": "\(counters.clientOutput.counted)", "disconnects_total": "\(total)",
        ])
    }

    private func reportCommands() {
        if commandsSinceReport > 0 {
            counters.commandsProcessed.add(commandsSinceReport, ordering: .relaxed)
            commandsSinceReport = 0
        }
        session.reportTallies(to: counters.llm)
    }
}
