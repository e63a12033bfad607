import NIOCore
import NIOTestUtils
import Testing
@testable import SluiceProtocol

@Suite("Request parser")
struct RESPRequestParserTests {
    func parseAll(_ wire: String, limits: RESPLimits = RESPLimits()) throws -> [RESPRequest] {
        var parser = RESPRequestParser(limits: limits)
        var buffer = ByteBuffer(string: wire)
        var out: [RESPRequest] = []
        while let request = try parser.next(from: &buffer) { out.append(request) }
        return out
    }

    func args(_ request: RESPRequest) -> [String] {
        guard case .command(let c) = request else { return ["<rejected>"] }
        return c.arguments.map { String(buffer: $0) }
    }

    @Test func respArrayOfBulkStrings() throws {
        let requests = try parseAll("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
        #expect(requests.count == 1)
        #expect(args(requests[0]) == ["SET", "key", "value"])
        if case .command(let c) = requests[0] { #expect(c.count == 3) }
    }

    @Test func binarySafeValues() throws {
        let requests = try parseAll("*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n")
        #expect(args(requests[0]) == ["GET", "a\r\nb"])
        let empty = try parseAll("*2\r\n$3\r\nGET\r\n$0\r\n\r\n")
        #expect(args(empty[0]) == ["GET", ""])
    }

    @Test func pipelinedRequestsInOrder() throws {
        let requests = try parseAll("PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\r\n")
        #expect(requests.map(args) == [["PING"], ["PING"], ["ECHO", "hi"]])
    }

    @Test func incompleteInputNeedsMoreAndConsumesNothing() throws {
        var parser = RESPRequestParser()
        for partial in ["*2\r\n$3\r\nGET\r\n$3\r\nke", "*2\r\n$3", "*", "PING", "*2\r\n$3\r\nGET\r\n$3\r\nkey\r"] {
            var buffer = ByteBuffer(string: partial)
            #expect(try parser.next(from: &buffer) == nil)
            #expect(buffer.readableBytes == partial.utf8.count)
        }
    }

    @Test func inlineRules() throws {
        #expect(try parseAll("set  k   v\r\n").map(args) == [["set", "k", "v"]])
        #expect(try parseAll("SET k \"a b\\n\\x41\"\n").map(args) == [["SET", "k", "a b\nA"]])
        #expect(try parseAll("SET k 'it\\'s'\r\n").map(args) == [["SET", "k", "it's"]])
        // Blank lines are ignored, as Redis does.
        #expect(try parseAll("\r\n\r\nPING\r\n").map(args) == [["PING"]])
    }

    @Test func unbalancedQuotesAreRejectedAndParsingGoesOn() throws {
        let requests = try parseAll("SET \"a b\r\nSET \"x\"y z\r\nPING\r\n")
        #expect(requests.count == 3)
        #expect(requests[0] == .rejected(RESPRejection("unbalanced quotes in request")))
        #expect(requests[1] == .rejected(RESPRejection("unbalanced quotes in request")))
        #expect(args(requests[2]) == ["PING"])
    }

    @Test func tooLongInlineLineIsRejectedAndSkipped() throws {
        let limits = RESPLimits(maxInlineLength: 16)
        var parser = RESPRequestParser(limits: limits)
        var buffer = ByteBuffer(string: String(repeating: "x", count: 40))
        guard case .rejected(let r) = try parser.next(from: &buffer) else { Issue.record("not rejected"); return }
        #expect(r.message.contains("inline request too long"))
        // The rest of the long line arrives later and is dropped; the next line parses.
        buffer.writeString(String(repeating: "y", count: 100) + "\r\nPING\r\n")
        let next = try parser.next(from: &buffer)
        #expect(next.map(args) == ["PING"])
    }

    @Test func oversizedBulkIsRejectedThenDiscardedAsItArrives() throws {
        let limits = RESPLimits(maxBulkLength: 8)
        var parser = RESPRequestParser(limits: limits)
        var buffer = ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\n0123456789")
        guard case .rejected(let r) = try parser.next(from: &buffer) else { Issue.record("not rejected"); return }
        #expect(r.message == "value too large (20 bytes > 8)")
        #expect(try parser.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)  // discarded, not buffered
        buffer.writeString("0123456789\r\n*1\r\n$4\r\nPING\r\n")
        #expect(try parser.next(from: &buffer).map(args) == ["PING"])
    }

    @Test func oversizedBulkBeforeOtherElementsSkipsTheWholeRequest() throws {
        let requests = try parseAll("*3\r\n$3\r\nSET\r\n$9\r\nlong-key!\r\n$1\r\nv\r\nPING\r\n", limits: RESPLimits(maxBulkLength: 4))
        #expect(requests.count == 2)
        #expect(args(requests[1]) == ["PING"])
    }

    @Test func tooManyArgumentsIsRejected() throws {
        let requests = try parseAll("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\nPING\r\n", limits: RESPLimits(maxArguments: 2))
        #expect(requests.count == 2)
        if case .rejected(let r) = requests[0] { #expect(r.message.contains("too many arguments")) } else { Issue.record("not rejected") }
        #expect(args(requests[1]) == ["PING"])
    }

    @Test(arguments: [
        ("*1\r\n:5\r\n", "expected '$', got ':'"),
        ("*x\r\n", "invalid multibulk length"),
        ("*1\r\n$x\r\n", "invalid bulk length"),
        ("*1\r\n$-5\r\n", "invalid bulk length"),
        ("*1\r\n$3\r\nabcXY", "bulk string not terminated by CRLF"),
        ("*1\n", "invalid multibulk length"),
    ])
    func brokenFramingThrows(wire: String, message: String) throws {
        var parser = RESPRequestParser()
        var buffer = ByteBuffer(string: wire)
        #expect(throws: RESPProtocolError(message)) { _ = try parser.next(from: &buffer) }
    }

    /// Redis sends nothing for `*0` (or `*-1`): answering would put a pipelining client out of
    /// step with its replies.
    @Test func emptyArrayIsIgnoredAsRedisDoes() throws {
        let requests = try parseAll("*0\r\n*-1\r\nPING\r\n")
        #expect(requests.count == 1)
        #expect(args(requests[0]) == ["PING"])
    }

    /// A big request arriving in many small reads is checked once, not from its start on every read.
    @Test func requestInManyReadsIsParsedInLinearWork() throws {
        let n = 20_000
        var wire = ByteBuffer(string: "*\(n)\r\n")
        for i in 0..<n { wire.writeString("$\(String(i).utf8.count)\r\n\(i)\r\n") }
        var parser = RESPRequestParser()
        var buffer = ByteBuffer()
        var chunks = 0
        var request: RESPRequest?
        while wire.readableBytes > 0 {
            var chunk = wire.readSlice(length: min(97, wire.readableBytes))!
            buffer.writeBuffer(&chunk)
            chunks += 1
            if let r = try parser.next(from: &buffer) { request = r }
        }
        guard case .command(let c) = request else { Issue.record("no request"); return }
        #expect(c.count == n)
        // Each element once, plus at most one re-read of an incomplete header per read.
        #expect(parser.headersExamined <= n + chunks)
    }

    @Test func overLimitBeforeAuthClosesInsteadOfBuffering() throws {
        var parser = RESPRequestParser(limits: .beforeAuth)
        var big = ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$15000000\r\nxxxx")
        #expect(throws: RESPProtocolError("request too large before AUTH")) { _ = try parser.next(from: &big) }
        var many = ByteBuffer(string: "*1000\r\n")
        #expect(throws: RESPProtocolError("too many arguments before AUTH (1000 > 32)")) { _ = try parser.next(from: &many) }
        var fine = ByteBuffer(string: "AUTH secret\r\n")
        #expect(try parser.next(from: &fine) == .command(RESPCommand("AUTH", "secret")))
    }

    /// NIOTestUtils feeds the bytes whole, one at a time and in random splits, and checks that
    /// the decoder gives the same requests every way.
    @Test func decoderVerifierWithPartialReads() throws {
        let wire = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\nSET k \"v v\"\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\r\n\r\n"
        let expected: [(ByteBuffer, [RESPRequest])] = [(ByteBuffer(string: wire), [
            .command(RESPCommand("GET", "key")),
            .command(RESPCommand("PING")),
            .command(RESPCommand("SET", "k", "v v")),
            .command(RESPCommand("SET", "k", "\r\n")),
        ])]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: expected) { RESPRequestDecoder() }
    }

    @Test func decoderVerifierWithRejections() throws {
        let wire = "*2\r\n$3\r\nGET\r\n$30\r\n" + String(repeating: "z", count: 30) + "\r\nGET ok\r\n"
        let expected: [(ByteBuffer, [RESPRequest])] = [(ByteBuffer(string: wire), [
            .rejected(RESPRejection("value too large (30 bytes > 10)")),
            .command(RESPCommand("GET", "ok")),
        ])]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: expected) {
            RESPRequestDecoder(limits: RESPLimits(maxBulkLength: 10))
        }
    }

    /// Arguments read as spans of the frame and as slices, mixed on one command: the spans index
    /// the frame's own bytes (a frame that is a slice of a larger read, with other requests
    /// before it), and an argument already read past can still be sliced.
    @Test func argumentSpansAndSlicesAgree() throws {
        let requests = try parseAll("*1\r\n$4\r\nPING\r\n*4\r\n$7\r\nLLM.GET\r\n$2\r\nns\r\n$0\r\n\r\n$11\r\nhello world\r\nGET inline\r\n")
        guard case .command(let pipelined) = requests[1], case .command(let inline) = requests[2] else {
            Issue.record("not commands: \(requests)")
            return
        }
        var arguments = pipelined.arguments
        #expect(arguments.next().map { String(buffer: $0) } == "LLM.GET")
        let spans = (arguments.nextSpan(), arguments.nextSpan(), arguments.nextSpan())
        let ns = try #require(spans.0), empty = try #require(spans.1), last = try #require(spans.2)
        #expect(arguments.nextSpan() == nil && arguments.next() == nil && arguments.isEmpty)
        #expect((ns.count, empty.count, last.count) == (2, 0, 11))
        arguments.withFrameBytes { frame in
            #expect(String(decoding: UnsafeRawBufferPointer(rebasing: frame[ns]), as: UTF8.self) == "ns")
            #expect(String(decoding: UnsafeRawBufferPointer(rebasing: frame[last]), as: UTF8.self) == "hello world")
            // Bounded by the frame: the next request's bytes are not in it.
            #expect(frame.count == pipelined.frame.writerIndex)
        }
        #expect(String(buffer: arguments.slice(ns)) == "ns" && arguments.slice(empty).readableBytes == 0)
        #expect(String(buffer: arguments.slice(last)) == "hello world")
        // An inline request is re-encoded: its spans index the re-encoded frame.
        var inlineArguments = inline.arguments
        _ = inlineArguments.nextSpan()
        let keySpan = inlineArguments.nextSpan()
        let key = try #require(keySpan)
        #expect(String(buffer: inlineArguments.slice(key)) == "inline")
    }
}
