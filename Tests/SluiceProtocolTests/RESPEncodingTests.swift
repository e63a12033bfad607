import NIOCore
import Testing
@testable import SluiceProtocol

@Suite("Reply encoding")
struct RESPEncodingTests {
    func wire(_ body: (inout ByteBuffer) -> Void) -> String {
        var b = ByteBuffer()
        body(&b)
        return String(buffer: b)
    }

    @Test func scalars() {
        #expect(wire { $0.writeRESPOK() } == "+OK\r\n")
        #expect(wire { $0.writeRESPError("ERR bad\r\nthing") } == "-ERR bad  thing\r\n")
        #expect(wire { $0.writeRESPNull() } == "$-1\r\n")
        #expect(wire { $0.writeRESPBulk("hello") } == "$5\r\nhello\r\n")
        #expect(wire { $0.writeRESPBulk("") } == "$0\r\n\r\n")
    }

    @Test(arguments: [0, 7, 10, 99, 12345, -1, -2, Int.max, Int.min])
    func integers(n: Int) {
        #expect(wire { $0.writeRESPInteger(n) } == ":\(n)\r\n")
    }

    @Test(arguments: [0, 9, 10, 100, 65_536, Int.max])
    func headersAndDecimals(n: Int) {
        #expect(wire { $0.writeRESPArrayHeader(n) } == "*\(n)\r\n")
        #expect(wire { $0.writeDecimal(n) } == "\(n)")
        #expect(wire { $0.writeDecimal(-n) } == "\(-n)")
    }

    /// The decimal writer (two digits at a time) agrees with Swift's own at every digit count
    /// and both signs, at each power of ten and either side of it.
    @Test func decimalsAtEveryLength() {
        var values: [Int] = Array(0...1000) + [Int.max, Int.min, Int.max - 1, Int.min + 1]
        var power = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, power * 3 + 7]
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Int.random(in: Int.min...Int.max, using: &rng) >> Int.random(in: 0...62, using: &rng)) }
        for n in values {
            #expect(wire { $0.writeDecimal(n) } == "\(n)")
            if n != Int.min { #expect(wire { $0.writeDecimal(-n) } == "\(-n)") }
        }
    }

    /// Every way to write a bulk string gives the same bytes, empty and large, and appends
    /// after what the buffer already holds (the one-reservation writers must not start at 0).
    @Test(arguments: [0, 1, 9, 10, 4096, 70_000])
    func bulkForms(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var expected = ByteBuffer(string: "x$\(length)\r\n")
        expected.writeBytes(payload)
        expected.writeString("\r\n")
        var source = ByteBuffer(bytes: payload)
        var viaInout = ByteBuffer(string: "x")
        viaInout.writeRESPBulk(&source)
        #expect(viaInout == expected)
        #expect(source.readableBytes == 0)
        var viaArray = ByteBuffer(string: "x")
        viaArray.writeRESPBulk(bytes: payload)
        #expect(viaArray == expected)
        var viaSlice = ByteBuffer(string: "x")
        viaSlice.writeRESPBulk(bytes: ([9] + payload)[1...])
        #expect(viaSlice == expected)
        var viaRaw = ByteBuffer(string: "x")
        payload.withUnsafeBytes { viaRaw.writeRESPBulk(raw: $0) }
        #expect(viaRaw == expected)
    }

    @Test func rawCursorWritesWholeReplies() {
        var b = ByteBuffer(string: "+OK\r\n")
        let answer = Array("answer".utf8)
        let reserved = answer.withUnsafeBytes { raw in
            b.writeWithUnsafeMutableBytes(minimumWritableBytes: raw.count + 90) { space in
                var c = RESPRawCursor(space)
                c.put("*4\r\n")
                c.putBulk(raw)
                c.putBulk(UnsafeRawBufferPointer(start: nil, count: 0))
                c.putInteger(Int.min)
                c.putInteger(0)
                return c.count
            }
        }
        #expect(String(buffer: b) == "+OK\r\n*4\r\n$6\r\nanswer\r\n$0\r\n\r\n:-9223372036854775808\r\n:0\r\n")
        #expect(reserved == b.readableBytes - 5)
    }

    @Test func valueRoundTrip() throws {
        let value = RESPValue.array([.simpleString("OK"), .error("ERR x"), .integer(-3), .bulk("a\r\nb"), .null, .array(nil), .array([])])
        var b = ByteBuffer()
        value.encode(into: &b)
        #expect(String(buffer: b) == "*7\r\n+OK\r\n-ERR x\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*-1\r\n*0\r\n")
        #expect(try RESPValue(consuming: &b) == value)
        #expect(b.readableBytes == 0)
    }

    @Test func partialReplyNeedsMore() throws {
        let wire = "*2\r\n$3\r\nabc\r\n$2\r\nx"
        var b = ByteBuffer(string: wire)
        #expect(try RESPValue(consuming: &b) == nil)
        #expect(b.readableBytes == wire.utf8.count)
    }

    @Test func commandBuilderMatchesWireForm() {
        let c = RESPCommand("SET", "k", "v")
        #expect(String(buffer: c.frame) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        #expect(c.arguments.map { String(buffer: $0) } == ["SET", "k", "v"])
    }

    /// Found by the fuzzer: a reply announcing 3×10¹¹ elements made the client-side parser
    /// reserve terabytes up front; a huge map count overflowed 2 × n.
    @Test func hugeAnnouncedCountsNeitherAllocateNorTrap() throws {
        var array = ByteBuffer(string: "*336854775807\r\n$1\r\nk\r\n")
        #expect(try RESPValue(consuming: &array) == nil)  // needs more bytes, honestly
        var map = ByteBuffer(string: "%9223372036854775807\r\n")
        #expect(throws: RESPProtocolError.self) { _ = try RESPValue(consuming: &map) }
    }

    /// The one-reservation writer appends at the writer index of the buffer it is given — a
    /// slice read from the front too — and leaves a copy that shares the storage unchanged.
    @Test func reservedWritesAppendAndCopyOnWrite() {
        var whole = ByteBuffer(string: "0123456789")
        var slice = whole.getSlice(at: 2, length: 6)!
        _ = slice.readBytes(length: 2)
        let before = slice
        slice.writeReserved(minimumWritableBytes: 30) { space in
            space.copyBytes(from: Array("abc".utf8))
            return 3
        }
        #expect(String(buffer: slice) == "4567abc")
        #expect(String(buffer: before) == "4567" && String(buffer: whole) == "0123456789")
        whole.writeDecimal(-42)
        #expect(String(buffer: whole) == "0123456789-42")
        // A zero-length write moves nothing.
        #expect(whole.writeReserved(minimumWritableBytes: 0) { _ in 0 } == 0 && String(buffer: whole) == "0123456789-42")
    }
}
