import NIOCore
import SluiceDomain
import Testing
@testable import SluiceServer

/// LLM.GET builds each question's key in the connection's scratch buffer and hands it back,
/// also on a miss whose answer may still be on its way holding that key.
@Suite("LLM.GET key scratch")
struct LLMKeyScratchTests {
    static func build(_ scratch: inout ByteBuffer?, _ ns: String, _ prompt: String) -> ByteBuffer {
        let length = LLMEntry.keyLength(namespace: ns.utf8.count, scope: 0, prompt: prompt.utf8.count)
        var key = LLMCommands.scratchKey(&scratch, length: length)
        Array(ns.utf8).withUnsafeBytes { n in
            Array(prompt.utf8).withUnsafeBytes { p in
                LLMCommands.writeKey(namespace: n, scope: nil, prompt: p, length: length, into: &key)
            }
        }
        return key
    }

    static func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func aKeyStillInFlightKeepsItsBytesWhileTheNextIsBuiltInTheScratch() {
        var scratch: ByteBuffer? = nil
        let first = Self.build(&scratch, "faq", "How do I reset my password?")
        #expect(first.capacity >= first.readableBytes && scratch == nil)
        // The request waiting on Redis holds the key; the scratch goes back all the same.
        let inFlight = first
        LLMCommands.keep(first, as: &scratch)
        let second = Self.build(&scratch, "faq", "Where is my invoice?")
        #expect(String(buffer: inFlight) == "llm:3:faq:0::How do I reset my password?")
        #expect(String(buffer: second) == "llm:3:faq:0::Where is my invoice?")
        #expect(Self.address(second) != Self.address(inFlight))
    }

    @Test func aKeyNoLongerHeldIsBuiltInPlaceNextTime() {
        var scratch: ByteBuffer? = nil
        // Moved out of an optional, so that nothing else holds it (a debug build keeps a
        // `let` alive to the end of its scope).
        var first: ByteBuffer? = Self.build(&scratch, "faq", "How do I reset my password?")
        let memory = Self.address(first!)
        LLMCommands.keep(first.take()!, as: &scratch)
        let second = Self.build(&scratch, "faq", "Where is my invoice?")
        #expect(Self.address(second) == memory)
        #expect(String(buffer: second) == "llm:3:faq:0::Where is my invoice?")
    }

    @Test func aKeyAHugePromptGrewIsNotKept() {
        var scratch: ByteBuffer? = nil
        let huge = Self.build(&scratch, "faq", String(repeating: "x", count: LLMCommands.maxKeptScratch + 1))
        LLMCommands.keep(huge, as: &scratch)
        #expect(scratch == nil)
        let small = Self.build(&scratch, "faq", "hi")
        LLMCommands.keep(small, as: &scratch)
        #expect(scratch.map { String(buffer: $0) } == "llm:3:faq:0::hi")
    }
}
