import NIOCore
import SluiceProtocol
import Testing
@testable import SluiceServer

@Suite("SEM.* over the wire")
struct SemanticCommandTests {
    /// VEC bytes: little-endian float32.
    func vec(_ xs: [Float]) -> ByteBuffer {
        var b = ByteBuffer()
        for x in xs { b.writeInteger(x.bitPattern, endianness: .little) }
        return b
    }

    /// A RESP request with binary-safe arguments (inline requests cannot carry VEC).
    func command(_ words: [String], vec v: [Float]) -> ByteBuffer {
        RESPCommand(words.map { ByteBuffer(string: $0) } + [vec(v)]).frame
    }

    @Test func paraphraseHitsAndNamespacesAndScopesIsolate() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("SEM.SET faq \"How do I reset my password?\" \"Use Forgot password.\" SCOPE gpt4\r\n") == "+OK\r\n")
        let hit = try await h.send("SEM.GET faq \"What's the way to reset my password?\" SCOPE gpt4\r\n")
        #expect(hit.hasPrefix("*3\r\n$20\r\nUse Forgot password.\r\n$") && hit.hasSuffix("$27\r\nHow do I reset my password?\r\n"))
        #expect(try await h.send("SEM.GET faq \"What's the way to reset my password?\" SCOPE claude\r\n") == "*-1\r\n")
        #expect(try await h.send("SEM.GET faq \"What's the way to reset my password?\"\r\n") == "*-1\r\n")  // no scope = scope ""
        #expect(try await h.send("SEM.GET other \"What's the way to reset my password?\" SCOPE gpt4\r\n") == "*-1\r\n")
        await h.close()
    }

    @Test func trapsAreMissesAndCounted() async throws {
        let h = try await Harness.make()
        _ = try await h.send("SEM.SET m \"What is 15% of 200?\" 30\r\nSEM.SET m \"Is ibuprofen safe during pregnancy?\" yes\r\n")
        #expect(try await h.send("SEM.GET m \"What is 20% of 200?\" MINSCORE 0.5\r\n") == "*-1\r\n")
        #expect(try await h.send("SEM.GET m \"Is ibuprofen not safe during pregnancy?\" MINSCORE 0.5\r\n") == "*-1\r\n")
        #expect(try await h.send("SEM.GET m \"What is 15% of 200?\"\r\n").hasPrefix("*3\r\n$2\r\n30\r\n"))
        let info = try await h.send("SEM.INFO m\r\n")
        #expect(info.contains("$5\r\ntraps\r\n:2\r\n") && info.contains("$4\r\nhits\r\n:1\r\n"))
        await h.close()
    }

    @Test func entriesExpire() async throws {
        let h = try await Harness.make()
        _ = try await h.send("SEM.SET t \"Explain recursion simply\" answer PX 1000\r\n")
        #expect(try await h.send("SEM.GET t \"Explain recursion simply\"\r\n").hasPrefix("*3\r\n"))
        h.clock.advance(1000)
        #expect(try await h.send("SEM.GET t \"Explain recursion simply\"\r\n") == "*-1\r\n")
        await h.close()
    }

    @Test func clientVectorsAndTheirChecks() async throws {
        let h = try await Harness.make()
        #expect(try await h.send(bytes: command(["SEM.SET", "v", "tell me about rivers", "r1", "VEC"], vec: [1, 0, 0])) == "+OK\r\n")
        #expect(try await h.send(bytes: command(["SEM.GET", "v", "describe rivers to me", "VEC"], vec: [0.9, 0.1, 0])).hasPrefix("*3\r\n$2\r\nr1\r\n"))
        #expect(try await h.send(bytes: command(["SEM.GET", "v", "x", "VEC"], vec: [1, 0])) == "-ERR namespace 'v' holds vectors of client/3 (embedder/dimension); this request's are client/2\r\n")
        #expect(try await h.send("SEM.GET v \"no vector here\"\r\n") == "-ERR namespace 'v' holds vectors of client/3 (embedder/dimension); this request's are minilm-tok128-v1/128\r\n")
        #expect(try await h.send("SEM.SET v p r VEC abc\r\n") == "-ERR VEC must be little-endian float32 values: 1 to 4096 of them (got 3 bytes)\r\n")
        await h.close()
    }

    @Test func minScoreFromRequestThenNamespaceThenDefault() async throws {
        let h = try await Harness.make()
        _ = try await h.send("SEM.SET s \"How do I reset my password?\" r\r\n")
        let q = "SEM.GET s \"What's the way to reset my password?\""
        #expect(try await h.send(q + " MINSCORE 0.99\r\n") == "*-1\r\n")
        #expect(try await h.send("SEM.CONFIG s MINSCORE 0.99\r\n").contains("$9\r\nmin_score\r\n$4\r\n0.99\r\n"))
        #expect(try await h.send(q + "\r\n") == "*-1\r\n")
        #expect(try await h.send(q + " MINSCORE 0.5\r\n").hasPrefix("*3\r\n"))
        #expect(try await h.send(q + " MINSCORE 2\r\n") == "-ERR MINSCORE must be a number from -1 to 1\r\n")
        await h.close()
    }

    @Test func bigNamespacesAreSearchedOffTheEventLoopWithTheSameReplies() async throws {
        // Threshold 1: the second entry makes the namespace "big"; replies stay the same and in order.
        let h = try await Harness.make { $0.semanticOffloadEntries = 1 }
        _ = try await h.send("SEM.SET big \"How do volcanoes form?\" magma\r\nSEM.SET big \"Best pasta recipe\" boil\r\n")
        let expected = "*3\r\n$5\r\nmagma\r\n"
        let reply = try await h.send("SEM.GET big \"How are volcanoes formed?\"\r\nSEM.GET big \"What is 15% of 200?\"\r\nPING\r\n", until: "+PONG\r\n")
        #expect(reply.hasPrefix(expected))
        #expect(reply.hasSuffix("\r\n*-1\r\n+PONG\r\n"))
        await h.close()
    }

    @Test func oldestAreEvictedAndDeletesAreReal() async throws {
        let h = try await Harness.make()
        _ = try await h.send("SEM.CONFIG e MAXENTRIES 2\r\n")
        _ = try await h.send("SEM.SET e \"How do volcanoes form?\" 1\r\nSEM.SET e \"Best pasta recipe\" 2\r\nSEM.SET e \"Explain quantum entanglement\" 3\r\n")
        let info = try await h.send("SEM.INFO e\r\n")
        #expect(info.contains("$7\r\nentries\r\n:2\r\n") && info.contains("$9\r\nevictions\r\n:1\r\n"))
        #expect(try await h.send("SEM.GET e \"How do volcanoes form?\" MINSCORE 0.95\r\n") == "*-1\r\n")  // evicted (oldest)
        #expect(try await h.send("SEM.GET e \"Best pasta recipe\" MINSCORE 0.95\r\n").hasPrefix("*3\r\n$1\r\n2\r\n"))
        #expect(try await h.send("SEM.DEL e \"Best pasta recipe\"\r\nSEM.DEL e \"Best pasta recipe\"\r\n") == ":1\r\n:0\r\n")
        #expect(try await h.send("SEM.GET e \"Best pasta recipe\" MINSCORE 0.95\r\n") == "*-1\r\n")
        #expect(try await h.send("SEM.DEL e\r\nSEM.INFO e\r\n") == ":1\r\n*-1\r\n")
        await h.close()
    }

    @Test func overLongPromptsAreRefused() async throws {
        let h = try await Harness.make()
        let long = String(repeating: "word ", count: 64 * 1024 / 5 + 1)
        let reply = try await h.send(bytes: RESPCommand(["SEM.SET", "ns", long, "answer"].map { ByteBuffer(string: $0) }).frame)
        #expect(reply == "-ERR the prompt is longer than 65536 bytes\r\n")
        let get = try await h.send(bytes: RESPCommand(["SEM.GET", "ns", long].map { ByteBuffer(string: $0) }).frame)
        #expect(get == "-ERR the prompt is longer than 65536 bytes\r\n")
        await h.close()
    }

    @Test func zeroVectorsAreRefused() async throws {
        let h = try await Harness.make()
        #expect(try await h.send(bytes: command(["SEM.SET", "v", "p", "r", "VEC"], vec: [0, 0, 0])) == "-ERR VEC must not be all zeros\r\n")
        await h.close()
    }

    @Test func whyExplainsEveryOutcome() async throws {
        let h = try await Harness.make()
        #expect(try await h.send("SEM.SET w \"What is 15% of 200?\" 30\r\n") == "+OK\r\n")
        let hit = try await h.send("SEM.GET w \"What is 15% of 200?\" WHY\r\n")
        #expect(hit.hasPrefix("*4\r\n$2\r\n30\r\n") && hit.hasSuffix("$3\r\nhit\r\n"))
        let trap = try await h.send("SEM.GET w \"What is 20% of 200?\" MINSCORE 0.5 WHY\r\n")
        #expect(trap.hasPrefix("*4\r\n$-1\r\n") && trap.contains("$19\r\nWhat is 15% of 200?\r\n") && trap.hasSuffix("$13\r\ntrap: numbers\r\n"))
        let below = try await h.send("SEM.GET w \"How do volcanoes erupt?\" MINSCORE 0.99 WHY\r\n")
        #expect(below.hasPrefix("*4\r\n$-1\r\n") && below.hasSuffix("$19\r\nbelow minscore 0.99\r\n"))
        let none = try await h.send("SEM.GET empty \"anything at all\" WHY\r\n")
        #expect(none == "*4\r\n$-1\r\n$-1\r\n$-1\r\n$22\r\nno entry in this scope\r\n")
        // Without WHY the replies are as before.
        #expect(try await h.send("SEM.GET w \"What is 20% of 200?\" MINSCORE 0.5\r\n") == "*-1\r\n")
        await h.close()
    }

    @Test func feedbackTightensAnEntryAndSaysSo() async throws {
        let h = try await Harness.make()
        _ = try await h.send(bytes: command(["SEM.SET", "f", "stored", "the answer", "VEC"], vec: [1, 0, 0]))
        #expect(try await h.send(bytes: command(["SEM.GET", "f", "asked", "VEC"], vec: [0.8, 0.6, 0])).hasPrefix("*3\r\n$10\r\nthe answer\r\n"))
        let bad = try await h.send(bytes: command(["SEM.FEEDBACK", "f", "asked", "bad", "VEC"], vec: [0.8, 0.6, 0]))
        #expect(bad.hasPrefix("*6\r\n$6\r\nstored\r\n") && bad.hasSuffix(":0\r\n:1\r\n:0\r\n"), "\(bad)")
        #expect(try await h.send(bytes: command(["SEM.GET", "f", "asked", "VEC"], vec: [0.8, 0.6, 0])) == "*-1\r\n")
        let why = try await h.send(bytes: command(["SEM.GET", "f", "asked", "WHY", "VEC"], vec: [0.8, 0.6, 0]))
        #expect(why.hasSuffix("$20\r\nbelow minscore 0.805\r\n"), "\(why)")  // 0.8 + 0.005, not rounded
        // Nothing answers it any more: nil, and nothing changes.
        #expect(try await h.send(bytes: command(["SEM.FEEDBACK", "f", "asked", "bad", "VEC"], vec: [0.8, 0.6, 0])) == "*-1\r\n")
        #expect(try await h.send("SEM.FEEDBACK f stored maybe\r\n") == "-ERR the verdict must be good or bad\r\n")
        #expect(try await h.send("SEM.FEEDBACK f stored good WHY\r\n") == "-ERR syntax error\r\n")
        let info = try await h.send("SEM.INFO f\r\n")
        #expect(info.contains("$12\r\nfeedback_bad\r\n:1\r\n"))
        await h.close()
    }

    @Test func feedbackJudgesTheEntryTheLookupServesNotTheOneWithTheSameText() async throws {
        let h = try await Harness.make()
        _ = try await h.send(bytes: command(["SEM.SET", "g", "first", "answer-1", "VEC"], vec: [1, 0]))
        _ = try await h.send(bytes: command(["SEM.SET", "g", "second", "answer-2", "VEC"], vec: [0, 1]))
        // The text is the first entry's prompt, but its vector finds the second.
        #expect(try await h.send(bytes: command(["SEM.GET", "g", "first", "VEC"], vec: [0.1, 1])).hasPrefix("*3\r\n$8\r\nanswer-2\r\n"))
        let judged = try await h.send(bytes: command(["SEM.FEEDBACK", "g", "first", "bad", "VEC"], vec: [0.1, 1]))
        #expect(judged.hasPrefix("*6\r\n$6\r\nsecond\r\n"), "\(judged)")
        #expect(try await h.send(bytes: command(["SEM.GET", "g", "first", "VEC"], vec: [1, 0])).hasPrefix("*3\r\n$8\r\nanswer-1\r\n"))
        // The lookup's checks apply: a vector of another dimension is refused, as by SEM.GET.
        #expect(try await h.send(bytes: command(["SEM.FEEDBACK", "g", "first", "bad", "VEC"], vec: [1, 0, 0, 0, 0])).hasPrefix("-ERR namespace 'g' holds vectors of"))
        await h.close()
    }

    @Test func vectorsWhoseLengthFloat32CannotHoldAreRefusedAndChangeNothing() async throws {
        let h = try await Harness.make()
        _ = try await h.send(bytes: command(["SEM.SET", "o", "p", "kept", "VEC"], vec: [1, 0, 0]))
        let refused = "-ERR VEC's length overflows or underflows float32 (scale it to about 1)\r\n"
        #expect(try await h.send(bytes: command(["SEM.SET", "o", "p", "lost?", "VEC"], vec: [3e38, 3e38, 1])) == refused)
        #expect(try await h.send(bytes: command(["SEM.SET", "o", "p", "lost?", "VEC"], vec: [1e-45, 1e-45, 0])) == refused)
        #expect(try await h.send(bytes: command(["SEM.GET", "o", "p", "VEC"], vec: [1, 0, 0])).hasPrefix("*3\r\n$4\r\nkept\r\n"))
        await h.close()
    }
}
