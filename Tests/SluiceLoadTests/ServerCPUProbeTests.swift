import Testing
@testable import SluiceLoad

@Suite struct ServerCPUProbeTests {
    @Test func serverCPUIsComparedByRoundWhenTheServerSaysIt() {
        let c = LoadComparison(commands: ["a", "b"], rounds: [[100, 90], [100, 95], [100, 80]],
                               serverMicroseconds: [[1.0, 1.1], [2.0, 2.0], [nil, 5.0]])
        #expect(c.rows[0].medianServerRatio == 1)
        #expect(abs(c.rows[1].medianServerRatio! - 1.05) < 1e-12)  // rounds 1 and 2 only: 1.1 and 1.0
        #expect(c.rows[1].minServerRatio == 1 && abs(c.rows[1].maxServerRatio! - 1.1) < 1e-12)
        #expect(c.rows[1].medianServerMicroseconds == 2.0)  // 1.1, 2.0, 5.0
        #expect(c.table.contains("server µs/req"))
        let none = LoadComparison(commands: ["a", "b"], rounds: [[1, 1]], serverMicroseconds: [[nil, nil]])
        #expect(none.rows[1].medianServerRatio == nil && !none.table.contains("server"))
    }

    @Test func infoCPUIsReadAsRedisWritesIt() {
        let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:0.000000\r\n"
        #expect(ServerCPUProbe.parse(info) == 3.75)
        #expect(ServerCPUProbe.parse("# CPU\r\nused_cpu_user:2.5\r\n") == nil)
        #expect(ServerCPUProbe.parse("used_cpu_user:x\r\nused_cpu_sys:1\r\n") == nil)
        #expect(ServerCPUProbe.parse("used_cpu_user:-1\r\nused_cpu_sys:1\r\n") == nil)
        #expect(ServerCPUProbe.parse("used_cpu_user:nan\r\nused_cpu_sys:1\r\n") == nil)
        // A hostile server's figures must not make the report's JSON unencodable (inf - inf).
        #expect(ServerCPUProbe.parse("used_cpu_user:1e308\r\nused_cpu_sys:1e308\r\n") == nil)
        #expect(ServerCPUProbe.parse("used_cpu_user:inf\r\nused_cpu_sys:1\r\n") == nil)
    }
}
