import NIOCore
import NIOPosix

/// Asks the server how much CPU it has used (`INFO cpu`: `used_cpu_user` + `used_cpu_sys`, as
/// Redis and Sluice both answer), so that a run can report the server's CPU per request — a
/// figure that, unlike the rate, does not depend on how fast the load generator is.
///
/// One short connection per question, outside the measured run; nil when the server does not
/// say (no such INFO section, an error reply, no answer within five seconds or the run's
/// `--timeout`, whichever is shorter).
enum ServerCPUProbe {
    static let maxWaitSeconds: Int64 = 5
    /// Largest reply taken (INFO cpu is a few hundred bytes).
    static let maxReplyBytes = 64 * 1024

    static func cpuSeconds(_ plan: LoadPlan, on loop: any EventLoop) async -> Double? {
        let replies = plan.password == nil ? 1 : 2
        let timeout = TimeAmount.seconds(max(1, min(Self.maxWaitSeconds, Int64(plan.idleTimeoutSeconds))))
        let reply = loop.makePromise(of: ByteBuffer.self)
        let timer = loop.scheduleTask(in: timeout) { reply.fail(LoadError(message: "INFO cpu: no answer")) }
        defer { timer.cancel() }
        let connect = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyCollector(replies: replies, done: reply))
                }
            }
            .connect(host: plan.host, port: plan.port)
        connect.whenFailure { reply.fail($0) }
        do {
            let channel = try await connect.get()
            var request = ByteBuffer()
            if let password = plan.password {
                LoadCommand.header(&request, count: 2, verb: "AUTH")
                LoadCommand.bulk(&request, password)
            }
            LoadCommand.header(&request, count: 2, verb: "INFO")
            LoadCommand.bulk(&request, "cpu")
            channel.writeAndFlush(request, promise: nil)
            let bytes = try await reply.futureResult.get()
            channel.close(promise: nil)
            return parse(String(decoding: bytes.readableBytesView, as: UTF8.self))
        } catch {
            if let channel = try? await connect.get() { channel.close(promise: nil) }
            return nil
        }
    }

    /// `used_cpu_user` + `used_cpu_sys` from INFO's text, nil unless both are there.
    static func parse(_ info: String) -> Double? {
        var user: Double?, system: Double?
        for line in info.split(whereSeparator: \.isNewline) {  // "\r\n" is one Character
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "used_cpu_user": user = Double(parts[1])
            case "used_cpu_sys": system = Double(parts[1])
            default: break
            }
        }
        // Seconds of CPU: anything past a century of it is a server that does not mean it.
        let limit = 100 * 365 * 86_400.0
        guard let user, let system, user >= 0, system >= 0, user <= limit, system <= limit else { return nil }
        return user + system
    }

    /// Collects `replies` replies and hands on the last one (an error reply fails).
    final class ReplyCollector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let replies: Int
        let done: EventLoopPromise<ByteBuffer>
        var buffer = ByteBuffer()
        var seen = 0

        init(replies: Int, done: EventLoopPromise<ByteBuffer>) {
            self.replies = replies
            self.done = done
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            buffer.writeBuffer(&bytes)
            guard buffer.readableBytes <= ServerCPUProbe.maxReplyBytes else {
                done.fail(LoadError(message: "INFO cpu: reply too long"))
                return
            }
            while seen < replies {
                switch ReplyScanner.scan(buffer) {
                case .incomplete:
                    return
                case .malformed(let why):
                    done.fail(LoadError(message: "INFO cpu: \(why)"))  // not RESP: no use waiting
                    context.close(promise: nil)
                    return
                case .complete(let length, let isError):
                    seen += 1
                    guard !isError else {
                        done.fail(LoadError(message: "INFO cpu: error reply"))
                        return
                    }
                    let reply = buffer.readSlice(length: length)!
                    if seen == replies { done.succeed(reply) }
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.fail(LoadError(message: "INFO cpu: closed"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            done.fail(error)
            context.close(promise: nil)
        }
    }
}
