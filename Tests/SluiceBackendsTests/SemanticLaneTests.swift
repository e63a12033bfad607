import NIOCore
import NIOPosix
import SluiceDomain
import Testing
@testable import SluiceBackends

/// Where a semantic lookup runs: on the event loop for a small namespace and a short prompt, on
/// the namespace's lane when the query prompt is long (the verifier's reading of tens of KiB
/// takes milliseconds whatever the namespace's size). Checked by the shape of the answer
/// (`.ready` on the caller's thread, `.later` from a lane), not by timing.
@Suite("Semantic lanes")
struct SemanticLaneTests {
    static func vector(_ seed: Float) -> [Float] {
        var v = (0..<8).map { Float($0) + seed }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        v = v.map { $0 / norm }
        return v
    }

    @Test func longQueryPromptsAreJudgedOnTheLane() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let lane = NIOThreadPool(numberOfThreads: 1)
        lane.start()
        defer {
            try? lane.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }
        let loop = group.next()
        let store = EmbeddedSemanticStore(cache: SemanticCache(), store: nil, lanes: [lane], offloadEntries: 1_000)
        let stored = "How do I reset my password?"
        let write = SemanticWrite(namespace: "ns", scope: "", prompt: stored, response: ByteBuffer(string: "answer"), embedder: "test",
                                  vector: Self.vector(1), createdAt: 0, expiresAt: 0, worth: AnswerWorth())
        guard case .ready(.success) = store.set(write, on: loop) else {
            Issue.record("a one-entry namespace is written on the caller's thread")
            return
        }
        let short = SemanticQuery(namespace: "ns", prompt: stored, scope: "", minScore: nil, embedder: "test", vector: Self.vector(1))
        guard case .ready(.success(.hit)) = store.get(short, now: 1, on: loop) else {
            Issue.record("a short prompt in a small namespace is looked up on the caller's thread")
            return
        }
        let long = String(repeating: "word ", count: SemanticNamespace.longPromptBytes / 5 + 1)
        var query = short
        query.prompt = long
        guard case .later(let future) = store.get(query, now: 1, on: loop) else {
            Issue.record("a prompt over \(SemanticNamespace.longPromptBytes) bytes goes to the lane")
            return
        }
        // Text that is not ASCII is long at a quarter of the line.
        query.prompt = String(repeating: "é", count: SemanticNamespace.longPromptBytes / 8 + 1)
        guard case .later(let accented) = store.get(query, now: 1, on: loop) else {
            Issue.record("a prompt of accented words over a quarter of the line goes to the lane")
            return
        }
        _ = try accented.wait()
        query.prompt = long
        // Answered from there, back on the loop.
        let outcome = try future.wait()
        guard case .success = outcome else {
            Issue.record("the lane answered \(outcome)")
            return
        }
        // A short query in a namespace holding a long prompt reads that prompt when it is a
        // candidate: the lane too.
        var longEntry = write
        longEntry.namespace = "long"
        longEntry.prompt = long
        guard case .ready(.success) = store.set(longEntry, on: loop) else {
            Issue.record("a one-entry namespace is written on the caller's thread")
            return
        }
        var shortThere = short
        shortThere.namespace = "long"
        guard case .later(let there) = store.get(shortThere, now: 1, on: loop) else {
            Issue.record("a namespace that holds a long prompt is searched on the lane")
            return
        }
        _ = try there.wait()
    }
}
