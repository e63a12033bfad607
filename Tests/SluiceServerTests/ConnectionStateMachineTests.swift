import NIOCore
import SluiceProtocol
import Testing
@testable import SluiceServer

/// The reply-ordering state machine on its own: no channel, no event loop.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    struct Failure: Error {}

    static func reply(_ text: String) -> Result<Reply, any Error> {
        .success(Reply { $0.writeRESPBulk(text) })
    }

    func text(_ out: inout ConnectionStateMachine) -> String {
        String(buffer: out.takeOutput())
    }

    @Test func readyRepliesGoStraightToTheOutput() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPOK()
        tail.writeRESPInteger(7)
        let action = m.finishBatch(tail: tail, inputLeft: false)
        #expect(action == .init(flush: true, setReading: nil, close: false, runBufferedInput: true))
        #expect(text(&m) == "+OK\r\n:7\r\n")
    }

    @Test func laterRepliesKeepRequestOrderWhateverOrderTheyArriveIn() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPOK()                              // request 1: ready
        let second = m.replyDeferred(tail: &tail)       // request 2: later
        tail.writeRESPInteger(3)                        // request 3: ready, waits behind 2
        let fourth = m.replyDeferred(tail: &tail)       // request 4: later
        tail.writeRESPInteger(5)                        // request 5: ready, waits behind 4
        _ = m.finishBatch(tail: tail, inputLeft: false)
        #expect(m.pendingReplies == 2)
        #expect(text(&m) == "+OK\r\n")
        // 4 arrives first: nothing may leave yet.
        #expect(m.replyArrived(sequence: fourth, Self.reply("four")) == .init(flush: false, setReading: nil, close: false, runBufferedInput: true))
        #expect(text(&m) == "")
        // 2 arrives: 2, 3, 4, 5 leave together, in order.
        #expect(m.replyArrived(sequence: second, Self.reply("two")).flush)
        #expect(text(&m) == "$3\r\ntwo\r\n:3\r\n$4\r\nfour\r\n:5\r\n")
        #expect(m.pendingReplies == 0)
    }

    /// Where a buffer's memory is (its storage, whatever its indices).
    static func memory(_ buffer: ByteBuffer) -> UInt {
        buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func writtenOutputIsReusedOnlyOnceTheChannelLetsGoOfIt() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        func batch(_ text: String) {
            var tail = m.startBatch()!
            tail.writeRESPBulk(text)
            _ = m.finishBatch(tail: tail, inputLeft: false)
        }
        batch("one")
        let first = m.takeOutput()
        let firstMemory = Self.memory(first)
        // The socket took it all: no one else holds it, so the next replies go in the same memory.
        m.recycleOutput(consume first)
        batch("two")
        let second = m.takeOutput()
        #expect(Self.memory(second) == firstMemory)
        #expect(String(buffer: second) == "$3\r\ntwo\r\n")

        // The write still waits (the channel holds `inFlight`): the next replies go elsewhere
        // and the bytes in flight stay as they were.
        let inFlight = second
        m.recycleOutput(consume second)
        batch("three")
        #expect(String(buffer: inFlight) == "$3\r\ntwo\r\n")
        let third = m.takeOutput()
        #expect(Self.memory(third) != Self.memory(inFlight))
        #expect(String(buffer: third) == "$5\r\nthree\r\n")

        // A buffer grown past the kept size is let go; the next starts at the kept size.
        m.recycleOutput(consume third)
        batch(String(repeating: "x", count: 40_000))
        let large = m.takeOutput()
        #expect(large.capacity > ConnectionStateMachine.retainedOutputCapacity)
        m.recycleOutput(consume large)
        #expect(m.output.buffer.capacity == ConnectionStateMachine.retainedOutputCapacity)
        #expect(m.output.buffer.readableBytes == 0)
    }

    @Test func aBufferWrittenEarlyInABatchIsReusedWithinTheKeptSize() {
        // Small and no longer shared: the same memory, emptied.
        var small = ByteBuffer(string: "reply")
        let smallMemory = Self.memory(small)
        ConnectionStateMachine.reuse(&small)
        #expect(Self.memory(small) == smallMemory && small.readableBytes == 0)
        // Still held by the channel: new memory, the bytes in flight untouched.
        var held = ByteBuffer(string: "in flight")
        let inFlight = held
        ConnectionStateMachine.reuse(&held)
        #expect(Self.memory(held) != Self.memory(inFlight) && String(buffer: inFlight) == "in flight")
        // Grown by a large reply: let go, the next starts at the kept size.
        var large = ByteBuffer(repeating: 0x78, count: 40_000)
        ConnectionStateMachine.reuse(&large)
        #expect(large.capacity == ConnectionStateMachine.retainedOutputCapacity && large.readableBytes == 0)
    }

    @Test func repliesWrittenWhileTheOutputIsOutAreNotRecycledAway() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPOK()
        let later = m.replyDeferred(tail: &tail)
        _ = m.finishBatch(tail: tail, inputLeft: false)
        let written = m.takeOutput()
        #expect(String(buffer: written) == "+OK\r\n")
        // The write raised an event in which a reply arrived (NIO calls back inside a write).
        #expect(m.replyArrived(sequence: later, Self.reply("late")).flush)
        m.recycleOutput(consume written)
        #expect(text(&m) == "$4\r\nlate\r\n")
        // And a closed connection takes nothing back.
        m.closed()
        var closing = ByteBuffer(string: "x")
        closing.reserveCapacity(64)
        m.recycleOutput(consume closing)
        #expect(m.output.buffer.capacity == 0)
    }

    @Test func aReplyCompletedInsideItsBatchIsWrittenWhenTheBatchEnds() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let first = m.replyDeferred(tail: &tail)
        // An already-complete future calls back at once, inside the batch: only recorded.
        #expect(m.replyArrived(sequence: first, Self.reply("now")) == ConnectionStateMachine.Action())
        tail.writeRESPOK()
        #expect(m.finishBatch(tail: tail, inputLeft: false).flush)
        #expect(text(&m) == "$3\r\nnow\r\n+OK\r\n")
    }

    @Test func readingPausesAtTheLimitAndResumesWhenTheHeadDrains() {
        var m = ConnectionStateMachine(maxPendingReplies: 2)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        #expect(m.canRunRequest)
        let b = m.replyDeferred(tail: &tail)
        #expect(!m.canRunRequest)                       // the handler's loop stops here
        let paused = m.finishBatch(tail: tail, inputLeft: true)
        #expect(paused.setReading == false && m.readingPaused)
        #expect(m.startBatch() == nil)                  // no request may run while full
        // The tail arriving frees nothing: the head still waits.
        #expect(m.replyArrived(sequence: b, Self.reply("b")).setReading == nil)
        let resumed = m.replyArrived(sequence: a, Self.reply("a"))
        #expect(resumed == .init(flush: true, setReading: true, close: false, runBufferedInput: true))
        #expect(!m.readingPaused && m.canRunRequest)
        #expect(text(&m) == "$1\r\na\r\n$1\r\nb\r\n")
    }

    @Test func closeWaitsForEveryReplyOwed() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let pending = m.replyDeferred(tail: &tail)
        tail.writeRESPOK()                              // QUIT's +OK, behind the pending reply
        #expect(m.stopReading() == ConnectionStateMachine.Action())  // inside the batch: nothing yet
        let end = m.finishBatch(tail: tail, inputLeft: false)
        #expect(!end.close && m.lifecycle == .draining && !m.canRunRequest)
        let last = m.replyArrived(sequence: pending, Self.reply("owed"))
        #expect(last.close && last.flush && m.lifecycle == .closed)
        #expect(text(&m) == "$4\r\nowed\r\n+OK\r\n")
    }

    @Test func halfCloseWithNothingPendingClosesAtOnce() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPOK()
        _ = m.finishBatch(tail: tail, inputLeft: false)
        let action = m.stopReading()
        #expect(action.close && action.flush)
        #expect(text(&m) == "+OK\r\n")
    }

    @Test func aFailedReplyIsAnErrorInItsPlace() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        let b = m.replyDeferred(tail: &tail)
        tail.writeRESPOK()
        _ = m.finishBatch(tail: tail, inputLeft: false)
        _ = m.replyArrived(sequence: b, .failure(CommandError("told you")))
        _ = m.replyArrived(sequence: a, .failure(Failure()))
        #expect(text(&m) == "-ERR internal error: Failure()\r\n-ERR told you\r\n+OK\r\n")
        #expect(m.pendingReplies == 0)
    }

    /// Redis down answers at once: every slot of a batch completes inline. The batch stops at
    /// the limit with input left; draining must say there is room again, or the rest of the
    /// client's pipeline would wait for bytes that never come.
    @Test func slotsAllCompletedInlineLeaveRoomForTheRestOfTheInput() {
        var m = ConnectionStateMachine(maxPendingReplies: 3)
        var tail = m.startBatch()!
        for i in 0..<3 {
            let s = m.replyDeferred(tail: &tail)
            _ = m.replyArrived(sequence: s, Self.reply("r\(i)"))
        }
        #expect(!m.canRunRequest)  // the handler's loop stops here, input left
        let action = m.finishBatch(tail: tail, inputLeft: true)
        #expect(action.runBufferedInput && action.flush && action.setReading == nil)
        #expect(text(&m) == "$2\r\nr0\r\n$2\r\nr1\r\n$2\r\nr2\r\n")
    }

    @Test func aReplyFromAnEarlierBatchArrivingInsideANewOneWaitsForItsEnd() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let early = m.replyDeferred(tail: &tail)
        tail.writeRESPInteger(1)
        _ = m.finishBatch(tail: tail, inputLeft: false)
        tail = m.startBatch()!
        tail.writeRESPInteger(2)
        #expect(m.replyArrived(sequence: early, Self.reply("early")) == ConnectionStateMachine.Action())
        tail.writeRESPInteger(3)
        #expect(m.finishBatch(tail: tail, inputLeft: false).flush)
        #expect(text(&m) == "$5\r\nearly\r\n:1\r\n:2\r\n:3\r\n")
    }

    @Test func stopReadingWhilePausedClosesOnceTheRepliesAreOut() {
        var m = ConnectionStateMachine(maxPendingReplies: 1)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        #expect(m.finishBatch(tail: tail, inputLeft: false).setReading == false)
        #expect(!m.stopReading().close)
        let last = m.replyArrived(sequence: a, Self.reply("a"))
        #expect(last.close && last.setReading == nil)
        #expect(text(&m) == "$1\r\na\r\n")
    }

    @Test func theChannelClosingInsideABatchEndsItQuietly() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        tail.writeRESPOK()
        m.closed()  // a failed early write closed the channel mid-batch
        #expect(!m.canRunRequest)
        #expect(m.finishBatch(tail: tail, inputLeft: false) == ConnectionStateMachine.Action())
        #expect(m.replyArrived(sequence: a, Self.reply("late")) == ConnectionStateMachine.Action())
        #expect(text(&m) == "")
    }

    /// A reply that arrives while an earlier one is pending is written at once and counted in
    /// the queued bytes (which pause reading and feed the output limits) until it can go, in
    /// order and in its own protocol version.
    @Test func aReplyWaitingBehindASlowerOneIsCounted() {
        var m = ConnectionStateMachine(maxPendingReplies: 8, maxQueuedBytes: 1000)
        var tail = m.startBatch()!
        let slow = m.replyDeferred(tail: &tail)
        tail.version = .resp3
        let fast = m.replyDeferred(tail: &tail)
        _ = m.finishBatch(tail: tail, inputLeft: false)
        let big = String(repeating: "v", count: 2000)
        _ = m.replyArrived(sequence: fast, .success(Reply { $0.writeRESPBulk(big); $0.writeRESPNull() }))
        #expect(m.queuedBytes == "$2000\r\n".utf8.count + 2000 + 2 + 3)
        #expect(!m.canRunRequest)  // over the queued bound: no more requests until it drains
        #expect(text(&m) == "")
        _ = m.replyArrived(sequence: slow, Self.reply("s"))
        #expect(m.queuedBytes == 0 && m.canRunRequest)
        #expect(text(&m) == "$1\r\ns\r\n$2000\r\n" + big + "\r\n_\r\n")
    }

    /// Replies already in the output when the channel goes are dropped with it, not kept for
    /// as long as the handler lives (answers still in flight keep it alive).
    @Test func closingDropsTheUnwrittenOutput() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPBulk(String(repeating: "x", count: 100_000))
        _ = m.finishBatch(tail: tail, inputLeft: false)
        #expect(m.output.buffer.readableBytes > 100_000)
        m.closed()
        #expect(m.output.buffer.readableBytes == 0 && m.output.buffer.capacity < 100_000)
    }

    @Test func eachReplyKeepsTheProtocolVersionOfItsRequest() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)            // asked in RESP2
        tail.version = .resp3                           // HELLO 3 in between
        tail.writeRESPNull()
        _ = m.finishBatch(tail: tail, inputLeft: false)
        _ = m.replyArrived(sequence: a, .success(Reply { $0.writeRESPNull() }))
        #expect(text(&m) == "$-1\r\n_\r\n")
    }

}
