import NIOCore
import Testing
@testable import SluiceLoad

@Suite struct ReplyScannerTests {
    func scan(_ text: String) -> ReplyScanner.Outcome { ReplyScanner.scan(ByteBuffer(string: text)) }

    @Test func completeRepliesOfEveryType() {
        #expect(scan("+OK\r\n") == .complete(length: 5, isError: false))
        #expect(scan("-ERR no\r\n") == .complete(length: 9, isError: true))
        #expect(scan(":42\r\n") == .complete(length: 5, isError: false))
        #expect(scan("$3\r\nabc\r\n") == .complete(length: 9, isError: false))
        #expect(scan("$-1\r\n") == .complete(length: 5, isError: false))
        #expect(scan("*-1\r\n") == .complete(length: 5, isError: false))
        #expect(scan("*2\r\n$1\r\na\r\n*1\r\n:1\r\n") == .complete(length: 19, isError: false))
        // Only the first reply is measured; what follows is left for the next scan.
        #expect(scan("+OK\r\n+OK\r\n") == .complete(length: 5, isError: false))
    }

    @Test func partialRepliesWaitForMoreBytes() {
        let full = "*3\r\n$5\r\nhello\r\n:7\r\n-ERR x\r\n"
        for cut in 0..<full.utf8.count {
            #expect(scan(String(decoding: full.utf8.prefix(cut), as: UTF8.self)) == .incomplete, "cut at \(cut)")
        }
        #expect(scan(full) == .complete(length: full.utf8.count, isError: false))
        // A bulk whose CRLF has not arrived.
        #expect(scan("$3\r\nabc") == .incomplete)
    }

    @Test func garbageIsMalformedNotACrash() {
        for bad in ["?x\r\n", "$abc\r\n", "$-2\r\n", "*-5\r\n", "$99999999999999999999\r\n", "$9999999999999999999\r\n", "*9223372036854775807\r\n", "$-\r\n", "$3\r\nabcd\r\n"] {
            guard case .malformed = scan(bad) else { Issue.record("\(bad) should be malformed"); continue }
        }
        // Nesting past the bound.
        let deep = String(repeating: "*1\r\n", count: ReplyScanner.maxDepth + 2) + ":1\r\n"
        guard case .malformed = scan(deep) else { Issue.record("deep nesting accepted"); return }
        // A line that never ends is refused once it is longer than any reply line may be.
        guard case .malformed = scan("+" + String(repeating: "a", count: ReplyScanner.maxLineLength + 10)) else {
            Issue.record("endless line accepted"); return
        }
    }

    @Test func scanningDoesNotMoveTheReaderIndex() {
        var buffer = ByteBuffer(string: "xx+OK\r\n")
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(ReplyScanner.scan(buffer) == .complete(length: 5, isError: false))
        #expect(buffer.readerIndex == 2)
    }
}

@Suite struct LoadPlanTests {
    @Test func mixParsesWeightsAndRefusesUnknownCommands() throws {
        let mix = try LoadPlan.parseMix("get=9, SET=1,cache.get")
        #expect(mix.map(\.0) == [.get, .set, .cacheGet])
        #expect(mix.map(\.1) == [9, 1, 1])
        func refusal(_ text: String) -> String? {
            do { _ = try LoadPlan.parseMix(text); return nil } catch { return error.description }
        }
        #expect(refusal("get=0") == "the weight of 'get' must be 1 to 1000000")
        #expect(refusal("get=99999999999999999999") == "the weight of 'get' must be 1 to 1000000")
        #expect(refusal("get,,set") == "an empty name in 'get,,set'")
        #expect(refusal("get,") == "an empty name in 'get,'")
        #expect(refusal("")?.hasPrefix("an empty name") == true)
        #expect(refusal("flushall")?.hasPrefix("unknown command 'flushall' (known: ping, get,") == true)
        #expect(refusal("get,GET") == "'GET' is listed twice")
        #expect(refusal(String(repeating: "get,", count: 2000)) == "the list is longer than 4096 bytes")
    }

    @Test func everyRunIsBounded() {
        var plan = LoadPlan()
        #expect(plan.validate() == nil)
        plan.requests = nil
        #expect(plan.validate() != nil)
        plan.seconds = 5
        #expect(plan.validate() == nil)
        plan.seconds = .infinity
        #expect(plan.validate() != nil)
        plan.seconds = .nan
        #expect(plan.validate() != nil)
    }

    @Test func sizesAreRangeChecked() {
        var plan = LoadPlan()
        plan.connections = 0
        #expect(plan.validate() != nil)
        plan = LoadPlan(); plan.pipeline = LoadPlan.maxPipeline + 1
        #expect(plan.validate() != nil)
        plan = LoadPlan(); plan.keyspace = LoadPlan.maxZipfKeyspace + 1; plan.distribution = .zipf
        #expect(plan.validate() != nil)
        plan = LoadPlan(); plan.valueSize = -1
        #expect(plan.validate() != nil)
    }

    @Test func keysAreRedisBenchmarksKeys() {
        var buffer = ByteBuffer()
        let plan = LoadPlan()
        LoadCommand.get.write(rank: 12345, plan: plan, value: ByteBuffer(), into: &buffer)
        #expect(String(buffer: buffer) == "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n")
    }

    @Test func zipfFavoursLowRanksAndStaysInRange() {
        let zipf = ZipfTrace(keys: 1000, alpha: 0.99)
        var low = 0
        for i in 0..<10_000 {
            let r = zipf.sample(Double(i) / 10_000)
            #expect((0..<1000).contains(r))
            if r < 10 { low += 1 }
        }
        // The first 1% of ranks draw far more than 1% of requests.
        #expect(low > 2_500)
    }
}

@Suite struct LoadTemplateTests {
    /// The fast path (template + digits) writes the very bytes the slow path does.
    @Test func templatesWriteWhatTheFullEncoderWrites() {
        var plan = LoadPlan()
        plan.leaseMilliseconds = 500
        let value = ByteBuffer(string: "vvvv")
        for command in LoadCommand.allCases {
            for rank in [0, 7, 123_456_789, 999_999_999_999] {
                var full = ByteBuffer()
                command.write(rank: rank, plan: plan, value: value, into: &full)
                guard let t = command.template(plan: plan, value: value) else {
                    #expect(command == .semGet || command == .semSet)
                    continue
                }
                var fast = ByteBuffer()
                fast.writeImmutableBuffer(t.head)
                if t.hasKey { LoadCommand.writeDigits(rank, into: &fast) }
                fast.writeImmutableBuffer(t.tail)
                #expect(fast == full, "\(command) \(rank)")
            }
        }
    }
}
