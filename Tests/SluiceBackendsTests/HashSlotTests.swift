import NIOCore
import Testing
import SluiceProtocol
@testable import SluiceBackends

/// Key → cluster slot, checked against values Redis itself gives (`CLUSTER KEYSLOT`), and the
/// tagged names Sluice builds for keys that must share a slot.
@Suite("Hash slots")
struct HashSlotTests {
    /// From redis-cli CLUSTER KEYSLOT on Redis 7 (and the cluster spec's CRC16 check value).
    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("123456789", 0x31C3 % 16384), ("{user1000}.following", 3443),
        ("{user1000}.followers", 3443), ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("", 0),
    ])
    func slotsMatchRedis(key: String, slot: Int) {
        #expect(HashSlot.of(ByteBuffer(string: key)) == slot)
    }

    @Test func taggedNamesOfOneKeyShareASlot() {
        for key in ["plain", "with space", "a{b", "}lead", "x}y{z", "{}", "{tag}rest", "ünïcode", ""] {
            let k = ByteBuffer(string: key)
            let names = ["sluice:c:", "sluice:lease:", "sluice:stale:"].map { HashSlot.tagged($0, k) }
            let slots = Set(names.map(HashSlot.of))
            #expect(slots.count == 1, "\(key): \(names.map { String(buffer: $0) })")
        }
        #expect(String(buffer: HashSlot.tagged("sluice:c:", ByteBuffer(string: "user:42"))) == "sluice:c:{user:42}")
        // Different keys stay different names even when one has braces.
        #expect(HashSlot.tagged("p:", ByteBuffer(string: "a{b")) != HashSlot.tagged("p:", ByteBuffer(string: "a")))
    }
}

/// The cluster router's parsing: redirections, `CLUSTER SLOTS`, which argument is the key, and
/// URLs that list several nodes.
@Suite("Cluster routing")
struct ClusterRoutingTests {
    @Test func redirectionsAreParsedAndBadOnesRefused() {
        #expect(ClusterRouter.redirection("MOVED 3999 127.0.0.1:6381")! == (3999, "127.0.0.1", 6381))
        #expect(ClusterRouter.redirection("ASK 12 ::1:7000")! == (12, "::1", 7000))
        #expect(ClusterRouter.redirection("MOVED 16384 127.0.0.1:6381") == nil)
        #expect(ClusterRouter.redirection("MOVED x 127.0.0.1:6381") == nil)
        #expect(ClusterRouter.redirection("MOVED 1") == nil)
    }

    @Test func slotRangesFromClusterSlots() {
        func node(_ host: String, _ port: Int) -> RESPValue { .array([.bulkString(ByteBuffer(string: host)), .integer(port), .bulkString(ByteBuffer(string: "id"))]) }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)]),
            .array([.integer(5461), .integer(16383), node("127.0.0.1", 7001)]),
        ])
        let ranges = ClusterRouter.slotRanges(reply)!
        #expect(ranges.count == 2 && ranges[0] == (0, 5460, "127.0.0.1", 7000) && ranges[1] == (5461, 16383, "127.0.0.1", 7001))
        #expect(ClusterRouter.slotRanges(.array([.array([.integer(5), .integer(2), node("h", 1)])])) == nil, "first after last")
        #expect(ClusterRouter.slotRanges(.array([.array([.integer(0), .integer(16384), node("h", 1)])])) == nil)
        #expect(ClusterRouter.slotRanges(.error("ERR This instance has cluster support disabled")) == nil)
    }

    @Test func theKeyOfEachCommand() {
        func key(_ words: String...) -> String? { ClusterRouter.routingKey(words.map { ByteBuffer(string: $0) }).map { String(buffer: $0) } }
        #expect(key("GET", "k") == "k")
        #expect(key("SET", "k", "v", "PX", "5") == "k")
        #expect(key("EVALSHA", "abc", "2", "k1", "k2", "arg") == "k1")
        #expect(key("EVAL", "return 1", "0") == nil)
        #expect(key("PUBLISH", "chan", "m") == nil)
        #expect(key("SCRIPT", "LOAD", "x") == nil)
        #expect(key("XADD", "sluice:sem:log", "*", "f", "v") == "sluice:sem:log")
    }

    @Test func urlsListingSeveralNodes() throws {
        let list = try RedisEndpoint.parseList("redis://:secret@127.0.0.1:7000,127.0.0.1:7001,[::1]:7002/0").get()
        #expect(list.map(\.port) == [7000, 7001, 7002] && list.allSatisfy { $0.password == "secret" })
        #expect(list[2].host == "::1")
        #expect(try RedisEndpoint.parseList("redis://h:1").get().count == 1)
        #expect((try? RedisEndpoint.parseList("redis://h:1,,h:2").get()) == nil)
        #expect((try? RedisEndpoint.parseList("redis://h:1,h:99999").get()) == nil)
    }
}
