import CSluiceResources
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceDomain

/// What each path of the operating port answers. The handler (``HTTPHandler``) only adapts
/// NIO's HTTP parts to this.
public final class HTTPRoutes: Sendable {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: ByteBuffer
        public var extraHeaders: [(String, String)] = []

        static func text(_ status: HTTPResponseStatus, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: text + "\n"))
        }

        static func json(_ status: HTTPResponseStatus, _ text: String) -> Response {
            Response(status: status, contentType: "application/json", body: ByteBuffer(string: text))
        }
    }

    let exporter: MetricsExporter
    let report: StatsReport
    let feed: DashboardFeed
    let password: PasswordCheck?
    let clock: any TimeSource
    let failureDelayMilliseconds: Int64
    /// Scrapes read every capability's counters (a lock per L1 shard, one per namespace): off
    /// the event loops.
    let pool: NIOThreadPool

    public init(exporter: MetricsExporter, report: StatsReport, feed: DashboardFeed, password: PasswordCheck?, clock: any TimeSource,
                pool: NIOThreadPool, failureDelayMilliseconds: Int64 = 100) {
        self.failureDelayMilliseconds = failureDelayMilliseconds
        self.exporter = exporter
        self.feed = feed
        self.report = report
        self.password = password
        self.clock = clock
        self.pool = pool
    }

    /// `/health` and `/ready` answer anyone (orchestrators probe without credentials and they
    /// reveal only up/down); everything else needs the password when one is set.
    static let open: Set<String> = ["/health", "/ready", "/healthz", "/readyz"]

    public func respond(to head: HTTPRequestHead, on eventLoop: any EventLoop) -> EventLoopFuture<Response> {
        let path = String(head.uri.prefix { $0 != "?" })
        guard head.method == .GET || head.method == .HEAD else {
            var r = Response.text(.methodNotAllowed, "only GET and HEAD")
            r.extraHeaders = [("Allow", "GET, HEAD")]
            return eventLoop.makeSucceededFuture(r)
        }
        if !Self.open.contains(path), let password, !Self.authorized(head.headers, password) {
            var r = Response.text(.unauthorized, "password required (Authorization: Bearer <password>, or Basic with any user)")
            r.extraHeaders = [("WWW-Authenticate", "Basic realm=\"sluice\"")]
            // As a failed AUTH on the protocol port: counted, and answered only after a delay
            // (a guess per 100 ms per connection: the next request waits for this response).
            // Asking without any credentials is how a browser starts; only wrong ones count.
            guard head.headers.contains(name: "authorization") else { return eventLoop.makeSucceededFuture(r) }
            report.counters.authFailures.add(1, ordering: .relaxed)
            return eventLoop.scheduleTask(in: .milliseconds(failureDelayMilliseconds)) { r }.futureResult
        }
        switch path {
        case "/metrics":
            return pool.runIfActive(eventLoop: eventLoop) { [exporter, clock] in
                var body = ByteBuffer()
                body.writeBytes(exporter.render(now: clock.nowMilliseconds()))
                return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body)
            }
        case "/health", "/healthz":
            return pool.runIfActive(eventLoop: eventLoop) { [report, clock] in
                let health = HealthReport(cache: report.cache.statistics(now: clock.nowMilliseconds()))
                return .json(health.healthy ? .ok : .serviceUnavailable, health.json)
            }
        case "/ready", "/readyz":
            // Listening and taking requests (this port closes first on shutdown), with the
            // shared semantic stream replayed (until then the index answers from its past).
            guard report.semantic.isCaughtUp else {
                return eventLoop.makeSucceededFuture(.json(.serviceUnavailable, "{\"ready\":false,\"reason\":\"replaying the shared semantic stream\"}"))
            }
            return eventLoop.makeSucceededFuture(.json(.ok, "{\"ready\":true}"))
        case "/stats.json":
            return pool.runIfActive(eventLoop: eventLoop) { [report, clock] in
                .json(.ok, report.statsJSON(now: clock.nowMilliseconds()))
            }
        case "/dashboard.json":
            return pool.runIfActive(eventLoop: eventLoop) { [feed] in .json(.ok, feed.json()) }
        case "/", "/index.html":
            var page = Response(status: .ok, contentType: "text/html; charset=utf-8", body: Self.dashboard)
            // One static page of our own: no script or style from anywhere else.
            page.extraHeaders = [("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"),
                                 ("X-Content-Type-Options", "nosniff")]
            return eventLoop.makeSucceededFuture(page)
        default:
            return eventLoop.makeSucceededFuture(.text(.notFound, "no such page"))
        }
    }

    /// The page, compiled into the binary.
    static let dashboard: ByteBuffer = {
        var length = 0
        guard let bytes = sluice_dashboard_html(&length) else { return ByteBuffer(string: "dashboard missing") }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: length))
    }()

    static func authorized(_ headers: HTTPHeaders, _ password: PasswordCheck) -> Bool {
        guard let value = headers.first(name: "authorization") else { return false }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return false }
        switch parts[0].lowercased() {
        case "bearer":
            return password.matches(ByteBuffer(string: String(parts[1])))
        case "basic":
            // Any user name; the password after the first colon.
            guard let decoded = Data(base64Encoded: String(parts[1])), let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return false }
            return password.matches(ByteBuffer(bytes: decoded[decoded.index(after: colon)...]))
        default:
            return false
        }
    }
}
