import Logging
import NIOCore
import SluiceProtocol

/// One client connection: parses requests straight out of the bytes read, runs them in order,
/// and writes all replies of a read batch with one flush.
///
/// Replies stay in request order: when a command must wait (a value coming from the L2), the
/// handler stops parsing, leaves the rest of the input where it is, and carries on from there
/// once the reply is written.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let env: ServerEnvironment
    private let table: CommandTable
    private var parser: RESPRequestParser
    private var input: ByteBuffer?
    private var output: RESPWriter
    private var session: Session
    /// A `.later` reply is outstanding.
    private var waiting = false
    /// No more requests will be read: QUIT, a protocol error, or the client closed its side.
    private var closing = false
    private var inputClosed = false
    private var commandsSinceReport = 0
    /// True while `execute` registers a `.later` callback: a future that is already complete
    /// calls back at once, and its reply must go into the batch's buffer, not `output`.
    private var registeringCallback = false
    private var inlineResult: Result<RESPValue, any Error>?
    private var now: Int64 = 0

    /// Write out early when a batch's replies grow past this many bytes.
    private static let flushThreshold = 64 * 1024

    init(environment: ServerEnvironment, table: CommandTable) {
        self.env = environment
        self.table = table
        self.parser = RESPRequestParser(limits: environment.configuration.limits)
        self.output = RESPWriter()
        let id = environment.counters.newClientID()
        self.session = Session(id: id, authenticated: environment.configuration.requirePass == nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        output.buffer = context.channel.allocator.buffer(capacity: 4096)
        env.counters.connectedClients.add(1, ordering: .relaxed)
        env.counters.totalConnections.add(1, ordering: .relaxed)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        env.counters.connectedClients.subtract(1, ordering: .relaxed)
        reportCommands()
        input = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if closing { return }
        if input == nil {
            input = bytes
        } else {
            input!.writeBuffer(&bytes)
        }
        now = env.clock.nowMilliseconds()
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
        reportCommands()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client sent all it will send: answer what is there, then close.
            inputClosed = true
            if !waiting { finishAndClose(context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        env.logger.debug("connection error", metadata: ["error": "\(error)", "client": "\(session.id)"])
        context.close(promise: nil)
    }

    // MARK: Requests

    private func process(context: ChannelHandlerContext) {
        guard !waiting, !closing, var buffer = input else { return }
        input = nil
        // Work on locals for the whole batch: class properties passed inout would pay a
        // dynamic exclusivity check on every request.
        var out = output
        output = RESPWriter()
        var parser = self.parser
        defer {
            self.parser = parser
            output = out
            if !closing && buffer.readableBytes > 0 {
                input = buffer
            }
        }
        while !waiting && !closing {
            let request: RESPRequest
            do {
                guard let next = try parser.next(from: &buffer) else { break }
                request = next
            } catch {
                env.counters.protocolErrors.add(1, ordering: .relaxed)
                out.writeRESPError("ERR Protocol error: " + error.message)
                closing = true
                context.writeAndFlush(wrapOutboundOut(out.buffer), promise: nil)
                out.buffer.clear()
                context.close(promise: nil)
                return
            }
            switch request {
            case .command(let command):
                execute(command, into: &out, context: context)
            case .rejected(let rejection):
                env.counters.rejectedRequests.add(1, ordering: .relaxed)
                out.writeRESPError("ERR " + rejection.message)
            }
            if out.buffer.readableBytes >= Self.flushThreshold {
                context.writeAndFlush(wrapOutboundOut(out.buffer), promise: nil)
                out.buffer.clear()
            }
        }
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
        var ctx = CommandContext(arguments: arguments, argumentCount: command.count - 1, now: now,
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
            closing = true
            output = out
            out = RESPWriter(version: output.version)
            finishAndClose(context: context)
        case .later(let future):
            waiting = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            registeringCallback = true
            future.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.resume(result, context: context)
            }
            registeringCallback = false
            if let result = inlineResult {
                // Already complete (e.g. Redis down: failed at once): reply now, carry on.
                inlineResult = nil
                waiting = false
                Self.write(result, into: &out)
            }
        }
    }

    private static func write(_ result: Result<RESPValue, any Error>, into out: inout RESPWriter) {
        switch result {
        case .success(let value): value.encode(into: &out)
        case .failure(let error): out.writeRESPError("ERR internal error: \(error)")
        }
    }

    /// A `.later` reply arrived: write it, then go on with the input that waited.
    private func resume(_ result: Result<RESPValue, any Error>, context: ChannelHandlerContext) {
        if registeringCallback {
            inlineResult = result
            return
        }
        waiting = false
        Self.write(result, into: &output)
        guard context.channel.isActive else { return }
        now = env.clock.nowMilliseconds()
        process(context: context)
        if inputClosed && !waiting {
            finishAndClose(context: context)
        } else {
            flush(context: context)
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

    // MARK: Output

    private func flush(context: ChannelHandlerContext) {
        guard output.buffer.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(output.buffer), promise: nil)
        output.buffer.clear()
    }

    private func finishAndClose(context: ChannelHandlerContext) {
        closing = true
        let pending = output.buffer
        output.buffer.clear()
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(pending)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    private func reportCommands() {
        if commandsSinceReport > 0 {
            env.counters.commandsProcessed.add(commandsSinceReport, ordering: .relaxed)
            commandsSinceReport = 0
        }
    }
}
