import DequeModule
import Logging
import NIOCore
import SluiceProtocol

/// One client connection: parses requests straight out of the bytes read, runs them, and writes
/// all replies of a read batch with one flush.
///
/// Replies always leave in request order, yet the connection does not stop when a command must
/// wait (an L2 read, anything in shared mode): such a reply gets a *slot*, the replies of the
/// requests after it are kept behind that slot, and slots are written out in order as their
/// replies arrive. So a pipelining client keeps many Redis round trips in flight. At most
/// ``maxSlots`` slots per connection; past that, reading pauses until the head drains.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A reply still to come, and the replies of the requests that came after it.
    struct Slot {
        var reply: Result<RESPValue, any Error>?
        var version: RESPVersion
        var after: RESPWriter
    }

    private let env: ServerEnvironment
    private let table: CommandTable
    private var parser: RESPRequestParser
    private var input: ByteBuffer?
    /// Replies that may be written now.
    private var output: RESPWriter
    private var slots = Deque<Slot>()
    /// Sequence number of `slots.first`.
    private var headSeq = 0
    private var session: Session
    /// No more requests will be read: QUIT, a protocol error, or the client closed its side.
    private var closing = false
    /// Close once every slot is written.
    private var closeWhenDrained = false
    private var processing = false
    /// A flush is queued on the event loop (replies arriving together go out in one write).
    private var flushScheduled = false
    /// Reading is paused because ``maxSlots`` replies are outstanding.
    private var readingPaused = false
    private var commandsSinceReport = 0
    private var now: Int64 = 0

    /// Write out early when a batch's replies grow past this many bytes.
    private static let flushThreshold = 64 * 1024
    static let maxSlots = 512

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
            closing = true
            closeAfterDraining(context: context)
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
        guard !closing, slots.count < Self.maxSlots, var buffer = input else { return }
        input = nil
        processing = true
        // Work on locals for the whole batch: class properties passed inout would pay a
        // dynamic exclusivity check on every request. `out` is where the next reply goes:
        // the ready output, or the tail of the last slot.
        var out = takeTail()
        var parser = self.parser
        while !closing && slots.count < Self.maxSlots {
            let request: RESPRequest
            do {
                guard let next = try parser.next(from: &buffer) else { break }
                request = next
            } catch {
                env.counters.protocolErrors.add(1, ordering: .relaxed)
                out.writeRESPError("ERR Protocol error: " + error.message)
                closing = true
                closeWhenDrained = true
                break
            }
            switch request {
            case .command(let command):
                execute(command, into: &out, context: context)
            case .rejected(let rejection):
                env.counters.rejectedRequests.add(1, ordering: .relaxed)
                out.writeRESPError("ERR " + rejection.message)
            }
            if slots.isEmpty && out.buffer.readableBytes >= Self.flushThreshold {
                context.writeAndFlush(wrapOutboundOut(out.buffer), promise: nil)
                out.buffer.clear()
            }
        }
        self.parser = parser
        putTail(out)
        if !closing && buffer.readableBytes > 0 { input = buffer }
        processing = false
        drain()
        updateReading(context: context)
        if closeWhenDrained { closeAfterDraining(context: context) }
    }

    /// Too many replies outstanding: stop reading, so a client that sends without reading its
    /// replies cannot make us buffer its input without bound; read again once they drain.
    private func updateReading(context: ChannelHandlerContext) {
        if slots.count >= Self.maxSlots && !readingPaused {
            readingPaused = true
            try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        } else if slots.count < Self.maxSlots && readingPaused {
            readingPaused = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    /// The writer for the next reply, taken out of its home (see ``putTail(_:)``).
    private func takeTail() -> RESPWriter {
        if slots.isEmpty {
            let out = output
            output = RESPWriter(version: out.version)
            return out
        }
        let out = slots[slots.count - 1].after
        slots[slots.count - 1].after = RESPWriter(version: out.version)
        return out
    }

    private func putTail(_ out: RESPWriter) {
        if slots.isEmpty { output = out } else { slots[slots.count - 1].after = out }
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
            closeWhenDrained = true
        case .later(let future):
            // What is in `out` now comes before this reply; what follows goes after it.
            putTail(out)
            slots.append(Slot(reply: nil, version: out.version, after: RESPWriter(version: out.version)))
            out = takeTail()
            let seq = headSeq + slots.count - 1
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            // A future that is already complete calls back right here; resume() only records it then.
            future.whenComplete { result in
                let (handler, context) = loopBound.value
                handler.resume(seq: seq, result, context: context)
            }
        }
    }

    /// A slot's reply arrived: record it, write out what is now in order, read on.
    private func resume(seq: Int, _ result: Result<RESPValue, any Error>, context: ChannelHandlerContext) {
        let index = seq - headSeq
        guard index >= 0 && index < slots.count else { return }
        slots[index].reply = result
        if processing { return }  // completed inline: process() drains when its batch ends
        drain()
        guard context.channel.isActive else { return }
        updateReading(context: context)
        now = env.clock.nowMilliseconds()
        process(context: context)
        if closeWhenDrained {
            closeAfterDraining(context: context)
        } else if !flushScheduled {
            // Other replies are probably completing in the same tick: write them together.
            flushScheduled = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.flushScheduled = false
                handler.flush(context: context)
            }
        }
    }

    /// Moves every leading slot whose reply has arrived into the output, in order.
    private func drain() {
        while let head = slots.first, let reply = head.reply {
            output.version = head.version
            switch reply {
            case .success(let value): value.encode(into: &output)
            case .failure(let error): output.writeRESPError("ERR internal error: \(error)")
            }
            var after = head.after
            output.buffer.writeBuffer(&after.buffer)
            output.version = after.version
            slots.removeFirst()
            headSeq += 1
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

    /// Closes once every outstanding reply has been written (now, if none is outstanding).
    private func closeAfterDraining(context: ChannelHandlerContext) {
        closeWhenDrained = true
        guard slots.isEmpty, context.channel.isActive else { return }
        closeWhenDrained = false
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
