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
        let action = m.finishBatch(tail: tail)
        #expect(action == .init(flush: true, setReading: nil, close: false, runBufferedInput: false))
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
        _ = m.finishBatch(tail: tail)
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

    @Test func aReplyCompletedInsideItsBatchIsWrittenWhenTheBatchEnds() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let first = m.replyDeferred(tail: &tail)
        // An already-complete future calls back at once, inside the batch: only recorded.
        #expect(m.replyArrived(sequence: first, Self.reply("now")) == ConnectionStateMachine.Action())
        tail.writeRESPOK()
        #expect(m.finishBatch(tail: tail).flush)
        #expect(text(&m) == "$3\r\nnow\r\n+OK\r\n")
    }

    @Test func readingPausesAtTheLimitAndResumesWhenTheHeadDrains() {
        var m = ConnectionStateMachine(maxPendingReplies: 2)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        #expect(m.canRunRequest)
        let b = m.replyDeferred(tail: &tail)
        #expect(!m.canRunRequest)                       // the handler's loop stops here
        let paused = m.finishBatch(tail: tail)
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
        let end = m.finishBatch(tail: tail)
        #expect(!end.close && m.lifecycle == .draining && !m.canRunRequest)
        let last = m.replyArrived(sequence: pending, Self.reply("owed"))
        #expect(last.close && last.flush && m.lifecycle == .closed)
        #expect(text(&m) == "$4\r\nowed\r\n+OK\r\n")
    }

    @Test func halfCloseWithNothingPendingClosesAtOnce() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        tail.writeRESPOK()
        _ = m.finishBatch(tail: tail)
        let action = m.stopReading()
        #expect(action.close && action.flush)
        #expect(text(&m) == "+OK\r\n")
    }

    @Test func aFailedReplyIsAnErrorInItsPlace() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        let b = m.replyDeferred(tail: &tail)
        _ = m.finishBatch(tail: tail)
        _ = m.replyArrived(sequence: b, .failure(CommandError("told you")))
        _ = m.replyArrived(sequence: a, .failure(Failure()))
        #expect(text(&m).hasPrefix("-ERR internal error: "))
        #expect(m.pendingReplies == 0)
    }

    @Test func eachReplyKeepsTheProtocolVersionOfItsRequest() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)            // asked in RESP2
        tail.version = .resp3                           // HELLO 3 in between
        tail.writeRESPNull()
        _ = m.finishBatch(tail: tail)
        _ = m.replyArrived(sequence: a, .success(Reply { $0.writeRESPNull() }))
        #expect(text(&m) == "$-1\r\n_\r\n")
    }

    @Test func repliesAfterTheConnectionClosedAreIgnored() {
        var m = ConnectionStateMachine(maxPendingReplies: 4)
        var tail = m.startBatch()!
        let a = m.replyDeferred(tail: &tail)
        _ = m.finishBatch(tail: tail)
        m.closed()
        #expect(m.replyArrived(sequence: a, Self.reply("late")) == ConnectionStateMachine.Action())
        #expect(text(&m) == "")
    }
}
