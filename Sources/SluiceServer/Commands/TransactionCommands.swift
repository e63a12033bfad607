import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// MULTI / EXEC / DISCARD, for clients that wrap a few writes in a transaction (aiocache's
/// multi_set with a TTL, redis-py pipelines with `transaction=True`).
///
/// EXEC runs the queued commands in order, each after the previous one answered, and replies
/// with all their replies — so the commands of one transaction see each other's effects, and
/// the connection's next request waits for the whole EXEC. What Sluice does not give is Redis's
/// isolation: another connection's command may run between two of them (each command is atomic
/// on its own). WATCH, which needs that isolation to mean anything, answers an error rather
/// than pretend.
struct TransactionCommands: CommandGroup {
    /// Bytes of replies one EXEC may hold; past it each further reply is an error (its command
    /// still ran). The client's output bound: a reply that large would close the connection.
    let maxReplyBytes: Int

    var commands: [Command] {
        let maxReplyBytes = maxReplyBytes
        return [
            Command("multi", arity: 1, runsInsideMulti: true, summary: "MULTI: queue the next commands until EXEC") { ctx, out throws(CommandError) in
                guard ctx.session.transaction == nil else { throw CommandError("MULTI calls can not be nested") }
                ctx.session.transaction = TransactionQueue()
                out.writeRESPOK()
                return .done
            },
            Command("discard", arity: 1, runsInsideMulti: true, summary: "DISCARD: forget the queued commands") { ctx, out throws(CommandError) in
                guard ctx.session.transaction != nil else { throw CommandError("DISCARD without MULTI") }
                ctx.session.transaction = nil
                out.writeRESPOK()
                return .done
            },
            Command("exec", arity: 1, runsInsideMulti: true, summary: "EXEC: run the queued commands in order; their replies") { ctx, out throws(CommandError) in
                guard let transaction = ctx.session.transaction else { throw CommandError("EXEC without MULTI") }
                ctx.session.transaction = nil
                guard !transaction.aborted else { throw CommandError(code: "EXECABORT", "Transaction discarded because of previous errors.") }
                let run = TransactionRun(commands: transaction.commands, table: ctx.table, session: ctx.session, eventLoop: ctx.eventLoop,
                                         time: ctx.time, version: out.version, maxReplyBytes: maxReplyBytes)
                return ctx.reply(run.start(), ordered: false, into: &out) { replies, out in
                    out.writeRESPArrayHeader(replies.count)
                    for reply in replies { out.buffer.writeImmutableBuffer(reply) }
                }
            },
            Command("watch", arity: -2, runsInsideMulti: true, summary: "WATCH: not supported (an error; see MULTI)") { ctx, _ throws(CommandError) in
                if ctx.session.transaction != nil { throw CommandError("WATCH inside MULTI is not allowed") }
                throw CommandError("WATCH is not supported: Sluice runs MULTI/EXEC in order but without isolation, so a watched key could change unseen")
            },
            Command("unwatch", arity: 1, summary: "UNWATCH: +OK (nothing is ever watched)") { _, out in
                out.writeRESPOK()
                return .done
            },
        ]
    }
}

/// One EXEC: the queued commands run one after another on the connection's event loop, each
/// after the previous one answered. Holds the session and table strongly (a command context only
/// borrows them, and the rest may run after the connection has gone). A reply that comes later
/// resumes the run from a fresh event-loop task, so a long transaction never deepens the stack.
final class TransactionRun: @unchecked Sendable {
    let commands: [RESPCommand]
    let table: CommandTable
    let session: Session
    let eventLoop: any EventLoop
    let time: Timestamp
    let version: RESPVersion
    let maxReplyBytes: Int
    var replies: [ByteBuffer] = []
    var replyBytes = 0
    var next = 0
    var promise: EventLoopPromise<[ByteBuffer]>?

    init(commands: [RESPCommand], table: CommandTable, session: Session, eventLoop: any EventLoop, time: Timestamp,
         version: RESPVersion, maxReplyBytes: Int) {
        self.commands = commands
        self.table = table
        self.session = session
        self.eventLoop = eventLoop
        self.time = time
        self.version = version
        self.maxReplyBytes = maxReplyBytes
        replies.reserveCapacity(commands.count)
    }

    /// Runs what can run now; the replies, now or when the last one arrives.
    func start() -> Deferred<[ByteBuffer]> {
        if runUntilLater() { return .ready(replies) }
        let promise = eventLoop.makePromise(of: [ByteBuffer].self)
        self.promise = promise
        return .later(promise.futureResult)
    }

    /// Runs commands until one answers later (false: its future resumes the run) or all are done.
    func runUntilLater() -> Bool {
        while next < commands.count {
            let command = commands[next]
            next += 1
            var out = RESPWriter(version: version)
            var arguments = command.arguments
            // Looked up and checked when queued; the table does not change.
            guard let verb = arguments.next(), let index = table.lookup(verb) else { continue }
            var ctx = CommandContext(arguments: arguments, argumentCount: command.count - 1, time: time, eventLoop: eventLoop,
                                     session: session, table: table, name: table.commands[index].name)
            let result: CommandResult
            do {
                result = try table.commands[index].run(&ctx, &out)
            } catch {
                out.writeRESPError(error.line)
                result = .done
            }
            switch result {
            case .done, .close:
                append(out.buffer)
            case .later(let future), .laterInOrder(let future):
                future.hop(to: eventLoop).whenComplete { [self] result in
                    var out = RESPWriter(version: version)
                    switch result {
                    case .success(let reply): reply.write(&out)
                    case .failure(let error as CommandError): out.writeRESPError(error.line)
                    case .failure(let error): out.writeRESPError("ERR internal error: \(error)")
                    }
                    append(out.buffer)
                    eventLoop.execute { [self] in
                        if runUntilLater() { promise?.succeed(replies) }
                    }
                }
                return false
            }
        }
        return true
    }

    func append(_ reply: ByteBuffer) {
        replyBytes += reply.readableBytes
        if replyBytes > maxReplyBytes {
            var refused = ByteBuffer()
            refused.writeRESPError("ERR the replies of this EXEC exceed the client output buffer limit; this command ran, its reply is dropped")
            replies.append(refused)
        } else {
            replies.append(reply)
        }
    }
}
