import Logging
import NIOCore
import SluiceDomain
import SluiceProtocol

/// PING, ECHO, AUTH, HELLO, QUIT, SELECT, CLIENT: what Redis clients send on their own.
struct ConnectionCommands: CommandGroup {
    /// `--requirepass`; nil: no AUTH needed.
    let password: PasswordCheck?
    let counters: ServerCounters
    let logger: Logger
    /// Each failed AUTH is answered this long after the previous failed one on its connection.
    let failureDelay: Int64

    var commands: [Command] {
        let password = password
        let refuse: @Sendable (inout CommandContext) -> CommandResult = { [self] ctx in self.refuse(&ctx) }
        return [
            Command("ping", arity: -1, summary: "PING [message]: +PONG, or the message back") { ctx, out throws(CommandError) in
                switch ctx.argumentCount {
                case 0: out.writeStaticString("+PONG\r\n")
                case 1: out.writeRESPBulk(try ctx.next())
                default: throw CommandError.wrongArity("ping")
                }
                return .done
            },
            Command("echo", arity: 2, summary: "ECHO message: the message back") { ctx, out throws(CommandError) in
                out.writeRESPBulk(try ctx.next())
                return .done
            },
            Command("auth", arity: -2, allowedBeforeAuth: true, summary: "AUTH [username] password") { ctx, out throws(CommandError) in
                guard ctx.argumentCount <= 2 else { throw CommandError.syntax }
                var secret = try ctx.next()
                if ctx.argumentCount == 2 {
                    // Only the "default" user exists, as in a Redis without ACLs.
                    let user = secret
                    secret = try ctx.next()
                    guard user.isKeyword("default") else { return refuse(&ctx) }
                }
                guard let password else {
                    throw CommandError("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
                }
                guard password.matches(secret) else { return refuse(&ctx) }
                ctx.session.authenticated = true
                out.writeRESPOK()
                return .done
            },
            Command("hello", arity: -1, allowedBeforeAuth: true, summary: "HELLO [2 [AUTH user pass] [SETNAME name]]: server facts") { ctx, out throws(CommandError) in
                var version = out.version
                if ctx.hasMore {
                    guard let asked = RESPVersion(rawValue: try ctx.nextInteger()) else {
                        throw CommandError(code: "NOPROTO", "sorry, this protocol version is not supported (Sluice speaks RESP2 and RESP3)")
                    }
                    version = asked
                }
                while ctx.hasMore {
                    let option = try ctx.next()
                    if option.isKeyword("AUTH") {
                        let user = try ctx.next(), secret = try ctx.next()
                        guard let password, user.isKeyword("default"), password.matches(secret) else { return refuse(&ctx) }
                        ctx.session.authenticated = true
                    } else if option.isKeyword("SETNAME") {
                        ctx.session.name = try Self.clientName(try ctx.next())
                    } else {
                        throw CommandError.syntax
                    }
                }
                guard ctx.session.authenticated else { throw Self.noAuth }
                // The reply already uses the version asked for, as Redis does.
                out.version = version
                RESPValue.map([
                    .bulk("server"), .bulk("sluice"),
                    .bulk("version"), .bulk(SluiceVersion.redisCompatible),
                    .bulk("proto"), .integer(version.rawValue),
                    .bulk("id"), .integer(ctx.session.id),
                    .bulk("mode"), .bulk("standalone"),
                    .bulk("role"), .bulk("master"),
                    .bulk("modules"), .array([]),
                ]).encode(into: &out)
                return .done
            },
            Command("quit", arity: -1, allowedBeforeAuth: true, runsInsideMulti: true, summary: "QUIT: +OK, then the server closes the connection") { _, out in
                out.writeRESPOK()
                return .close
            },
            Command("select", arity: 2, summary: "SELECT 0: only database 0 exists") { ctx, out throws(CommandError) in
                guard try ctx.nextInteger() == 0 else { throw CommandError("DB index is out of range") }
                out.writeRESPOK()
                return .done
            },
            Command("client", arity: -2, summary: "CLIENT SETNAME|GETNAME|ID|SETINFO|INFO") { ctx, out throws(CommandError) in
                let sub = try ctx.next()
                if sub.isKeyword("SETNAME") {
                    ctx.session.name = try Self.clientName(try ctx.next())
                    out.writeRESPOK()
                } else if sub.isKeyword("GETNAME") {
                    if let name = ctx.session.name { out.writeRESPBulk(name) } else { out.writeRESPNull() }
                } else if sub.isKeyword("ID") {
                    out.writeRESPInteger(ctx.session.id)
                } else if sub.isKeyword("SETINFO") {
                    let attribute = try ctx.next(), value = try ctx.next()
                    if attribute.isKeyword("LIB-NAME") {
                        ctx.session.libraryName = try Self.clientName(value)
                    } else if attribute.isKeyword("LIB-VER") {
                        ctx.session.libraryVersion = try Self.clientName(value)
                    } else {
                        throw CommandError("Unrecognized option '\(attribute.text)'")
                    }
                    out.writeRESPOK()
                } else if sub.isKeyword("INFO") {
                    out.writeRESPBulk("id=\(ctx.session.id) name=\(ctx.session.name ?? "") lib-name=\(ctx.session.libraryName ?? "") lib-ver=\(ctx.session.libraryVersion ?? "")\n")
                } else {
                    throw CommandError("unknown subcommand '\(sub.text)'. Try CLIENT SETNAME, GETNAME, ID, SETINFO, INFO.")
                }
                return .done
            },
        ]
    }

    /// Names and library facts go into CLIENT INFO lines: as in Redis, printable ASCII without
    /// spaces only, and (unlike Redis) at most 256 bytes.
    static func clientName(_ raw: ByteBuffer) throws(CommandError) -> String {
        guard raw.readableBytes <= 256, raw.readableBytesView.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CommandError("Client names cannot contain spaces, newlines or special characters.")
        }
        return raw.text
    }

    static let authFailed = CommandError(code: "WRONGPASS", "invalid username-password pair or user is disabled.")

    /// A wrong password: counted, logged (at most one line a second server-wide, with the totals:
    /// a client opening connection after connection cannot flood the log), and answered only
    /// after `failureDelay` ms more than the previous failure on this connection, so guessing is
    /// slow without holding the event loop (the reply is a scheduled task).
    func refuse(_ ctx: inout CommandContext) -> CommandResult {
        let total = counters.authFailures.add(1, ordering: .relaxed).newValue
        let session = ctx.session
        session.authFailures += 1
        if ServerCounters.firstThisSecond(counters.authLoggedSecond, ctx.monotonic / 1000) {
            logger.warning("failed AUTH", metadata: [
                "client": "\(session.id)", "failures_on_connection": "\(session.authFailures)", "failures_total": "\(total)",
            ])
        }
        let at = max(ctx.monotonic, session.authReplyNotBefore).addingSaturating(failureDelay)
        session.authReplyNotBefore = at
        let eventLoop = ctx.eventLoop
        return .later(eventLoop.scheduleTask(in: .milliseconds(at - ctx.monotonic)) { () throws -> Reply in
            throw Self.authFailed
        }.futureResult)
    }
    static let noAuth = CommandError(code: "NOAUTH", "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
}
