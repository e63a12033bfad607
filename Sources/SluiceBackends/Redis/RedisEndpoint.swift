/// Where a Redis is and how to log in: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL; nil with a reason on failure.
    public static func parse(_ url: String) -> Result<RedisEndpoint, RedisError> {
        guard url.hasPrefix("redis://") else { return .failure(.badURL("\(url): must start with redis://")) }
        var rest = Substring(url.dropFirst("redis://".count))
        var endpoint = RedisEndpoint()
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                endpoint.username = user.isEmpty ? nil : String(user)
                endpoint.password = String(credentials[credentials.index(after: colon)...]).removingPercentEscapes
            } else {
                endpoint.password = String(credentials).removingPercentEscapes
            }
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { return .failure(.badURL("\(url): database must be a number")) }
                endpoint.database = n
            }
        }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                return .failure(.badURL("\(url): bad port"))
            }
            endpoint.port = port
            rest = rest[..<colon]
        }
        if rest.hasPrefix("[") && rest.hasSuffix("]") { rest = rest.dropFirst().dropLast() }
        if !rest.isEmpty { endpoint.host = String(rest) }
        return .success(endpoint)
    }

    /// `redis://[[user]:password@]host:port[,host:port...][/db]`: one Redis, or the seed nodes of
    /// a Redis Cluster (each with the same credentials and database).
    public static func parseList(_ url: String) -> Result<[RedisEndpoint], RedisError> {
        guard url.hasPrefix("redis://") else { return .failure(.badURL("\(url): must start with redis://")) }
        let rest = url.dropFirst("redis://".count)
        let at = rest.lastIndex(of: "@")
        let credentials = at.map { String(rest[...$0]) } ?? ""
        var hosts = at.map { rest[rest.index(after: $0)...] } ?? rest
        var tail = ""
        if let slash = hosts.firstIndex(of: "/") {
            tail = String(hosts[slash...])
            hosts = hosts[..<slash]
        }
        var endpoints: [RedisEndpoint] = []
        for host in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard !host.isEmpty else { return .failure(.badURL("\(url): an empty host in the list")) }
            switch parse("redis://" + credentials + host + tail) {
            case .success(let e): endpoints.append(e)
            case .failure(let error): return .failure(error)
            }
        }
        return .success(endpoints)
    }

    /// The URL without the password, for logs.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(auth)\(host):\(port)/\(database)"
    }
}

extension String {  // for the URL parsing above
    /// %XX decoding for passwords in URLs.
    fileprivate var removingPercentEscapes: String {
        var bytes: [UInt8] = []
        var it = Array(utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
