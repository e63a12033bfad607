import Foundation
#if canImport(Glibc)
import Glibc
@testable import SluiceBackends
#endif

/// A real redis-server on a free loopback port, started and killed by the test itself (so a
/// test can take it down and bring it back). Requires the redis-server that scripts/test.sh
/// installs from Debian.
final class RedisServerProcess {
    static let binary = "/usr/bin/redis-server"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    let port: Int
    let extraArguments: [String]
    let directory: URL
    var process: Process?

    init(extraArguments: [String] = []) throws {
        port = Self.freePort()
        self.extraArguments = extraArguments
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", directory.path] + extraArguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Ready when it accepts connections (bounded wait).
        for _ in 0..<200 {
            if Self.canConnect(port) { return }
            usleep(10_000)
        }
        throw CocoaError(.fileNoSuchFile)
    }

    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A one-connection client of this server, connected (waits up to 2 s).
    func connectedClient() async throws -> RedisClient {
        let client = RedisClient(endpoint: RedisEndpoint(host: "127.0.0.1", port: port), connections: 1)
        for _ in 0..<200 where !client.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        return client
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
