import Foundation
import NIOCore
import NIOPosix
import SluiceProtocol
import Testing
@testable import SluiceBackends

@Suite("Redis endpoint URLs")
struct RedisEndpointTests {
    @Test func parsesTheUsualForms() throws {
        #expect(try RedisEndpoint.parse("redis://127.0.0.1:6380").get() == RedisEndpoint(host: "127.0.0.1", port: 6380))
        #expect(try RedisEndpoint.parse("redis://cache.local").get() == RedisEndpoint(host: "cache.local", port: 6379))
        #expect(try RedisEndpoint.parse("redis://:s3cr%40t@h:7000/2").get() == RedisEndpoint(host: "h", port: 7000, password: "s3cr@t", database: 2))
        #expect(try RedisEndpoint.parse("redis://app:pw@h/5").get() == RedisEndpoint(host: "h", port: 6379, username: "app", password: "pw", database: 5))
        #expect(try RedisEndpoint.parse("redis://[::1]:6400").get() == RedisEndpoint(host: "::1", port: 6400))
        #expect(RedisEndpoint(host: "h", port: 1, password: "x").description == "redis://:***@h:1/0")
    }

    @Test(arguments: ["http://h:1", "redis://h:0", "redis://h:99999", "redis://h:1/x", "redis://h:port"])
    func rejectsBadOnes(url: String) {
        #expect(throws: RedisError.self) { try RedisEndpoint.parse(url).get() }
    }
}

@Suite("Redis connection (hiredis) against a real redis-server", .enabled(if: RedisServerProcess.available), .serialized)
struct RedisConnectionTests {
    let loop = MultiThreadedEventLoopGroup.singleton.any()

    func waitUntil(_ what: String, timeout: Double = 5, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: what]) }
            usleep(5_000)
        }
    }

    func command(_ c: RedisConnection, _ words: String...) async throws -> RESPValue {
        try await c.send(words.map { ByteBuffer(string: $0) }, on: loop).get()
    }

    @Test func roundTripsValuesAndErrors() async throws {
        let redis = try RedisServerProcess()
        let c = RedisConnection(endpoint: RedisEndpoint(port: redis.port))
        defer { c.close() }
        try waitUntil("connected") { c.isConnected }
        #expect(try await command(c, "SET", "k", "v") == .simpleString("OK"))
        #expect(try await command(c, "GET", "k") == .bulk("v"))
        #expect(try await command(c, "GET", "missing") == .null)
        #expect(try await command(c, "INCR", "n") == .integer(1))
        #expect(try await command(c, "LRANGE", "none", "0", "-1") == .array([]))
        guard case .error(let message) = try await command(c, "INCR", "k") else { Issue.record("no error"); return }
        #expect(message.hasPrefix("ERR value is not an integer"))
        // Binary-safe, including empty arguments.
        var blob = ByteBuffer(bytes: [0, 13, 10, 255, 0])
        #expect(try await c.send([ByteBuffer(string: "SET"), ByteBuffer(string: "b"), blob], on: loop).get() == .simpleString("OK"))
        #expect(try await command(c, "GET", "b") == .bulkString(blob))
        blob.clear()
        #expect(try await c.send([ByteBuffer(string: "SET"), ByteBuffer(), blob], on: loop).get() == .simpleString("OK"))
    }

    @Test func manyConcurrentCommandsArePipelinedAndAnsweredInOrder() async throws {
        let redis = try RedisServerProcess()
        let c = RedisConnection(endpoint: RedisEndpoint(port: redis.port))
        defer { c.close() }
        try waitUntil("connected") { c.isConnected }
        let futures = (0..<5000).map { i in
            c.send(["RPUSH", "list", String(i)].map { ByteBuffer(string: $0) }, on: loop)
        }
        for (i, f) in futures.enumerated() {
            #expect(try await f.get() == .integer(i + 1))
        }
        #expect(c.counters.commands >= 5000)
    }

    @Test func failsFastWhileDownAndReconnectsWhenRedisReturns() async throws {
        let redis = try RedisServerProcess()
        let c = RedisConnection(endpoint: RedisEndpoint(port: redis.port))
        defer { c.close() }
        try waitUntil("connected") { c.isConnected }
        #expect(try await command(c, "SET", "k", "v") == .simpleString("OK"))

        redis.kill()
        try waitUntil("noticed the loss") { !c.isConnected }
        let started = Date()
        await #expect(throws: RedisError.self) { _ = try await command(c, "GET", "k") }
        #expect(Date().timeIntervalSince(started) < 0.1)  // fails at once, no hanging

        try redis.start()
        let restarted = Date()
        try waitUntil("reconnected") { c.isConnected }
        #expect(Date().timeIntervalSince(restarted) < 1.0)
        #expect(try await command(c, "PING") == .simpleString("PONG"))
        #expect(c.counters.connects == 2)
    }

    @Test func nothingListeningMeansUnavailable() async throws {
        let c = RedisConnection(endpoint: RedisEndpoint(port: RedisServerProcess.freePort()))
        defer { c.close() }
        await #expect(throws: RedisError.self) { _ = try await command(c, "PING") }
        #expect(!c.isConnected)
    }

    @Test func authAndSelectFromTheURL() async throws {
        let redis = try RedisServerProcess(extraArguments: ["--requirepass", "pw"])
        let c = RedisConnection(endpoint: try RedisEndpoint.parse("redis://:pw@127.0.0.1:\(redis.port)/3").get())
        defer { c.close() }
        try waitUntil("connected") { c.isConnected }
        #expect(try await command(c, "SET", "in-db-3", "yes") == .simpleString("OK"))
        let other = RedisConnection(endpoint: try RedisEndpoint.parse("redis://:pw@127.0.0.1:\(redis.port)/3").get())
        defer { other.close() }
        try waitUntil("connected") { other.isConnected }
        #expect(try await command(other, "GET", "in-db-3") == .bulk("yes"))
        #expect(try await command(other, "SELECT", "0") == .simpleString("OK"))
        #expect(try await command(other, "GET", "in-db-3") == .null)

        let wrong = RedisConnection(endpoint: try RedisEndpoint.parse("redis://:nope@127.0.0.1:\(redis.port)").get())
        defer { wrong.close() }
        try waitUntil("tried to connect") { wrong.counters.failedConnects >= 1 }
        #expect(!wrong.isConnected && wrong.counters.connects == 0)
    }
}
