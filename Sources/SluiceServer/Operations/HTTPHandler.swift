import NIOCore
import NIOHTTP1
import Synchronization

/// One connection of the operating port: a request head in, ``HTTPRoutes`` decides, the
/// response out. Requests carry no body here; one larger than ``maxBody`` is refused and the
/// connection closed. A connection must complete each request within ``requestDeadline`` of
/// opening or of its previous response (a client trickling bytes cannot hold a slot), and one
/// past ``HTTPListener/maxConnections`` is closed at once.
final class HTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBody = 64 * 1024
    static let requestDeadline = TimeAmount.seconds(10)

    final class Shared: Sendable {
        let routes: HTTPRoutes
        /// Connections open now (bounded by ``HTTPListener/maxConnections``).
        let open = Atomic<Int>(0)

        init(routes: HTTPRoutes) {
            self.routes = routes
        }
    }

    let shared: Shared
    var head: HTTPRequestHead?
    var bodyBytes = 0
    var counted = false
    var deadline: Scheduled<Void>?

    init(shared: Shared) {
        self.shared = shared
    }

    func channelActive(context: ChannelHandlerContext) {
        counted = true
        if shared.open.add(1, ordering: .relaxed).newValue > HTTPListener.maxConnections {
            // No request has come yet, so there is nothing to answer: close (an HTTP response
            // before a request would also break NIO's pipelining handler).
            context.close(promise: nil)
            return
        }
        armDeadline(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted { shared.open.subtract(1, ordering: .relaxed) }
        counted = false
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    /// The next request must be complete within ``requestDeadline``.
    func armDeadline(context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: Self.requestDeadline) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let bytes):
            bodyBytes += bytes.readableBytes
            if bodyBytes > Self.maxBody, head != nil {
                head = nil
                write(.text(.payloadTooLarge, "requests here have no body"), keepAlive: false, headOnly: false, context: context)
            }
        case .end:
            guard let request = head else { return }
            head = nil
            deadline?.cancel()
            deadline = nil
            let keepAlive = request.isKeepAlive
            let headOnly = request.method == .HEAD
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            shared.routes.respond(to: request, on: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let response):
                    handler.write(response, keepAlive: keepAlive, headOnly: headOnly, context: context)
                case .failure:
                    handler.write(.text(.serviceUnavailable, "shutting down"), keepAlive: false, headOnly: headOnly, context: context)
                }
            }
        }
    }

    func write(_ response: HTTPRoutes.Response, keepAlive: Bool, headOnly: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in response.extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        if !headOnly { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive { armDeadline(context: context) }
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
