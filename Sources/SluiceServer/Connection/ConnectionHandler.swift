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

    private let table: CommandTable
    private let counters: ServerCounters
    private let clock: any TimeSource
    private let logger: Logger
    private let limits: RESPLimits
    private var parser: RESPRequestParser
    private var state: ConnectionStateMachine
    private let session: Session
    /// Bytes read but not yet parsed (a partial request, or requests waiting for room).
    private var input: ByteBuffer?
    /// A flush is queued on the event loop (replies arriving together go out in one write).
    private var flushScheduled = false
    /// Inside ``process(context:flushNow:)``: replies completing inline must not start another.
    private var processing = false
    private var commandsSinceReport = 0
    private var now = Timestamp(wall: 0, monotonic: 0)

    init(table: CommandTable, counters: ServerCounters, clock: any TimeSource, limits: RESPLimits, requiresAuth: Bool, logger: Logger) {
        self.table = table
        self.counters = counters
        self.clock = clock
        self.logger = logger
        self.limits = limits
        // Until AUTH, only small requests (a password is needed only when one is set).
        self.parser = RESPRequestParser(limits: requiresAuth ? .beforeAuth : limits)
        self.state = ConnectionStateMachine(maxPendingReplies: Self.maxPendingReplies)
        self.session = Session(id: counters.newClientID(), authenticated: !requiresAuth)
    }

    func channelActive(context: ChannelHandlerContext) {
        counters.connectedClients.add(1, ordering: .relaxed)
        counters.totalConnections.add(1, ordering: .relaxed)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.connectedClients.subtract(1, ordering: .relaxed)
        reportCommands()
        state.closed()
        input = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard state.lifecycle == .reading else { return }
        if input == nil {
            input = bytes
        } else {
            input!.writeBuffer(&bytes)
        }
        now = clock.timestamp()
        process(context: context, flushNow: false)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
        reportCommands()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client sent all it will send: answer what is there, then close.
            input = nil
            perform(state.stopReading(), context: context, flushNow: true)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)", "client": "\(session.id)"])
        context.close(promise: nil)
    }

    // MARK: Requests

    /// Runs the buffered requests while there is room for their replies.
    private func process(context: ChannelHandlerContext, flushNow: Bool) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while runBatch(context: context, flushNow: flushNow) {
            now = clock.timestamp()
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
        while state.canRunRequest {
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
                execute(command, into: &out, context: context)
                if parser.limits.overLimitIsFatal && session.authenticated {
                    parser.limits = limits  // authenticated: the configured limits from now on
                }
            case .rejected(let rejection):
                counters.rejectedRequests.add(1, ordering: .relaxed)
                out.writeRESPError("ERR " + rejection.message)
            }
            if state.tailIsOutput && out.buffer.readableBytes >= Self.flushThreshold {
                context.writeAndFlush(wrapOutboundOut(out.buffer), promise: nil)
                out.buffer.clear()
            }
        }
        self.parser = parser
        if state.lifecycle == .reading && buffer.readableBytes > 0 { input = buffer }
        let action = state.finishBatch(tail: out)
        perform(action, context: context, flushNow: flushNow)
        // Stopped for want of room, and the replies that arrived meanwhile made some: go on.
        return !needsMoreBytes && action.runBufferedInput && input != nil
    }

    private func execute(_ command: RESPCommand, into out: inout RESPWriter, context: ChannelHandlerContext) {
        commandsSinceReport += 1
        var arguments = command.arguments
        guard let verb = arguments.next(), let index = table.lookup(verb) else {
            writeUnknown(command, into: &out)
            return
        }
        guard table.commands[index].acceptsArgumentCount(command.count) else {
            out.writeRESPError(CommandError.wrongArity(table.commands[index].name).line)
            return
        }
        guard session.authenticated || table.commands[index].allowedBeforeAuth else {
            out.writeRESPError("NOAUTH Authentication required.")
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
        case .later(let future):
            let sequence = state.replyDeferred(tail: &out)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            // A future that is already complete calls back right here; the state machine only
            // records it then, and the batch's end writes it out in order.
            future.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.perform(handler.state.replyArrived(sequence: sequence, result), context: context, flushNow: true)
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

    // MARK: Doing what the state machine says

    /// `flushNow`: outside a read (a reply arrived, the client half-closed): write out now (one
    /// flush per event-loop tick); inside a read, `channelReadComplete` flushes.
    private func perform(_ action: ConnectionStateMachine.Action, context: ChannelHandlerContext, flushNow: Bool) {
        if let reading = action.setReading {
            try? context.channel.syncOptions?.setOption(.autoRead, value: reading)
        }
        if action.close {
            let pending = state.takeOutput()
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(pending)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if action.flush && flushNow { scheduleFlush(context: context) }
        if action.runBufferedInput && input != nil && !processing {
            now = clock.timestamp()
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
        guard state.output.buffer.readableBytes > 0, context.channel.isActive else { return }
        context.writeAndFlush(wrapOutboundOut(state.takeOutput()), promise: nil)
    }

    private func reportCommands() {
        if commandsSinceReport > 0 {
            counters.commandsProcessed.add(commandsSinceReport, ordering: .relaxed)
            commandsSinceReport = 0
        }
    }
}
