import DequeModule
import NIOCore
import SluiceProtocol

/// The order of one connection's replies and whether it reads, as a plain state machine: the
/// ``ConnectionHandler`` feeds it events and does what the returned ``Action`` says. No NIO
/// channel in here, so every rule is tested on its own (`ConnectionStateMachineTests`).
///
/// Replies leave in request order, yet the connection does not stop when a command must wait
/// (an L2 read, anything in shared mode): such a reply gets a *slot*, the replies of the
/// requests after it are kept behind that slot, and slots move to ``output`` in order as their
/// replies arrive. So a pipelining client keeps many round trips in flight.
///
/// What may pile up is bounded, and requests stop running (and reading pauses) while a bound is
/// reached: at most `maxPendingReplies` slots, at most `maxQueuedBytes` of replies waiting behind
/// them, and nothing more while the socket is not writable (the client is not reading its
/// replies). Input is read only while the next request is incomplete, so what is buffered on
/// the way in is at most one request.
///
/// Lifecycle: reading → draining (QUIT, a protocol error, or the client closed its side: no
/// more requests, every reply owed is still written) → closed (the handler closes the channel).
struct ConnectionStateMachine {
    struct Slot {
        var reply: Result<Reply, any Error>?
        /// The protocol version when the request was read (HELLO may change it later).
        var version: RESPVersion
        /// Replies of the requests after this one, written once it is.
        var after: RESPWriter
        /// The reply written out already, when it arrived while an earlier one was still
        /// pending: its bytes are then known, and counted in ``queuedBytes`` while it waits.
        var written: RESPWriter? = nil
    }

    enum Lifecycle: Equatable {
        case reading
        case draining
        case closed
    }

    /// What the handler must do after an event.
    struct Action: Equatable {
        /// Write ``output`` out (it holds replies).
        var flush = false
        /// Stop (false) or start again (true) reading from the socket.
        var setReading: Bool?
        /// Every reply is out: close the connection (after the flush).
        var close = false
        /// Room for requests again: run any input already buffered.
        var runBufferedInput = false
    }

    /// Replies that may be written now, in order.
    private(set) var output: RESPWriter
    private var slots = Deque<Slot>()
    /// Sequence number of `slots.first`.
    private var headSequence = 0
    private(set) var lifecycle = Lifecycle.reading
    /// Inside a batch, replies that arrive are only recorded: the batch's end drains them.
    private var inBatch = false
    private(set) var readingPaused = false
    /// The socket does not take more (its buffer is above the high-water mark).
    private(set) var outputBlocked = false
    /// The last batch stopped with complete requests left in the input.
    private var inputWaiting = false
    /// Bytes of replies kept behind pending slots (not counting the tail a batch has out).
    private(set) var queuedBytes = 0
    let maxPendingReplies: Int
    let maxQueuedBytes: Int

    init(maxPendingReplies: Int, maxQueuedBytes: Int = .max, output: RESPWriter = RESPWriter()) {
        self.maxPendingReplies = maxPendingReplies
        self.maxQueuedBytes = maxQueuedBytes
        self.output = output
    }

    var pendingReplies: Int { slots.count }

    /// May another request be read and run now?
    var canRunRequest: Bool {
        lifecycle == .reading && barrier == nil && slots.count < maxPendingReplies && !outputBlocked && queuedBytes < maxQueuedBytes
    }

    /// A deferred reply the next request must wait for (``replyDeferred(tail:inOrder:)``).
    private(set) var barrier: Int?

    /// Whether `tail` is the ready output itself (nothing is pending), so it may be written out
    /// early in a long batch.
    var tailIsOutput: Bool { slots.isEmpty }

    // MARK: A batch of requests

    /// Starts running the requests of one read. Returns the writer for their replies (the
    /// ready output, or the queue behind the last slot), or nil when no request may run now.
    mutating func startBatch() -> RESPWriter? {
        guard canRunRequest, !inBatch else { return nil }
        inBatch = true
        return takeTail()
    }

    /// The request just run answers later: what `tail` holds goes before its reply, what is
    /// written to `tail` from now on goes after it. Returns the reply's sequence number.
    /// `inOrder`: no further request runs until this reply has arrived.
    mutating func replyDeferred(tail: inout RESPWriter, inOrder: Bool = false) -> Int {
        precondition(inBatch, "replies are deferred while a batch runs")
        putTail(tail)
        slots.append(Slot(reply: nil, version: tail.version, after: RESPWriter(version: tail.version)))
        tail = takeTail()
        let sequence = headSequence + slots.count - 1
        if inOrder { barrier = sequence }
        return sequence
    }

    /// The batch is done. `inputLeft`: it stopped with complete requests still in the input
    /// (for want of room), not because the next one is incomplete. Replies that arrived during
    /// it are written out now; if that made room, `runBufferedInput` says so — replies
    /// completed inline (Redis down answers at once) fill the slots with nothing left to wait for.
    mutating func finishBatch(tail: RESPWriter, inputLeft: Bool) -> Action {
        precondition(inBatch)
        inBatch = false
        guard lifecycle != .closed else { return Action() }
        putTail(tail)
        inputWaiting = inputLeft
        drain()
        return nextAction()
    }

    // MARK: Events

    /// A deferred reply arrived (on the connection's event loop).
    mutating func replyArrived(sequence: Int, _ result: Result<Reply, any Error>) -> Action {
        let index = sequence - headSequence
        guard index >= 0, index < slots.count, lifecycle != .closed else { return Action() }
        slots[index].reply = result
        if index > 0 {
            // It waits for an earlier one: written now, so that what it holds counts (a 16 MB
            // value read from the file waiting behind a slow lookup was held, uncounted, by
            // the hundred).
            var written = RESPWriter(version: slots[index].version)
            Self.write(result, into: &written)
            queuedBytes += written.buffer.readableBytes
            slots[index].written = written
        }
        if barrier == sequence { barrier = nil }
        if inBatch { return Action() }  // completed inline: the batch drains when it ends
        drain()
        return nextAction()
    }

    /// The socket's writability changed (above / back below its high-water mark).
    mutating func writabilityChanged(writable: Bool) -> Action {
        outputBlocked = !writable
        if inBatch || lifecycle == .closed { return Action() }  // the batch stops / resumes on its own
        return nextAction()
    }

    /// QUIT, a protocol error, or the client closed its side: read no more; close once every
    /// reply owed is written.
    mutating func stopReading() -> Action {
        if lifecycle == .reading { lifecycle = .draining }
        if inBatch { return Action() }
        return nextAction()
    }

    /// The channel went away: nothing more is written.
    mutating func closed() {
        lifecycle = .closed
        barrier = nil
        slots.removeAll()
        queuedBytes = 0
        // Unwritten replies go too: the handler may live on while answers it will drop arrive.
        output = RESPWriter(version: output.version)
    }

    /// The largest output buffer kept for the next replies once written, as Redis keeps a 16 KiB
    /// reply buffer per client: a larger one (a big value, a long pipeline) goes with its write,
    /// so an idle connection holds at most this much.
    static let retainedOutputCapacity = 16 * 1024

    /// Hands the ready bytes to the handler to write. Hand them back with
    /// ``recycleOutput(_:)`` once written, so the next replies reuse their memory.
    mutating func takeOutput() -> ByteBuffer {
        let bytes = output.buffer
        // Empty, and no storage of its own (a shared zero-capacity one): nothing allocated yet.
        output.buffer = ByteBuffer()
        return bytes
    }

    /// Takes back the buffer ``takeOutput()`` returned, after the handler has written it. When
    /// the socket took all of it, the channel holds no reference any more and the next replies
    /// are written into the same memory: a flush allocates nothing. When the write still waits
    /// the memory is the channel's until then, and `clear()` allocates anew (copy-on-write
    /// keeps the bytes in flight intact). Replies written meanwhile (an event the write raised)
    /// are kept, and the buffer is dropped.
    mutating func recycleOutput(_ written: consuming ByteBuffer) {
        guard lifecycle != .closed, output.buffer.capacity == 0 else { return }
        Self.reuse(&written)
        output.buffer = written
    }

    /// Empties a buffer whose bytes were handed to the channel, for the next replies: the same
    /// memory when the channel is done with it and it is at most ``retainedOutputCapacity``;
    /// otherwise a new buffer of that size (a large reply's memory goes with its write).
    static func reuse(_ buffer: inout ByteBuffer) {
        guard buffer.capacity > retainedOutputCapacity else { return buffer.clear() }
        buffer = ByteBuffer()
        buffer.reserveCapacity(retainedOutputCapacity)
    }

    // MARK: Internals

    /// Moves every leading slot whose reply has arrived into the output, in order.
    private mutating func drain() {
        while let head = slots.first, let reply = head.reply {
            if var written = head.written {
                queuedBytes -= written.buffer.readableBytes
                output.buffer.writeBuffer(&written.buffer)
            } else {
                output.version = head.version
                Self.write(reply, into: &output)
            }
            var after = head.after
            queuedBytes -= after.buffer.readableBytes
            output.buffer.writeBuffer(&after.buffer)
            output.version = after.version
            slots.removeFirst()
            headSequence += 1
        }
    }

    static func write(_ reply: Result<Reply, any Error>, into out: inout RESPWriter) {
        switch reply {
        case .success(let reply): reply.write(&out)
        case .failure(let error as CommandError): out.writeRESPError(error.line)
        case .failure(let error): out.writeRESPError("ERR internal error: \(error)")
        }
    }

    private mutating func nextAction() -> Action {
        var action = Action()
        action.flush = output.buffer.readableBytes > 0
        if lifecycle == .reading {
            // Read while requests can run, or while the next one is still incomplete.
            let shouldPause = !canRunRequest && (inputWaiting || slots.count >= maxPendingReplies || outputBlocked || queuedBytes >= maxQueuedBytes)
            if shouldPause != readingPaused {
                readingPaused = shouldPause
                action.setReading = !shouldPause
            }
        }
        if lifecycle == .draining && slots.isEmpty {
            lifecycle = .closed
            action.close = true
        }
        action.runBufferedInput = canRunRequest
        return action
    }

    /// The writer for the next reply, taken out of its home (see ``putTail(_:)``).
    private mutating func takeTail() -> RESPWriter {
        if slots.isEmpty {
            let out = output
            output = RESPWriter(version: out.version)
            return out
        }
        let out = slots[slots.count - 1].after
        queuedBytes -= out.buffer.readableBytes
        slots[slots.count - 1].after = RESPWriter(version: out.version)
        return out
    }

    private mutating func putTail(_ out: RESPWriter) {
        if slots.isEmpty {
            output = out
        } else {
            slots[slots.count - 1].after = out
            queuedBytes += out.buffer.readableBytes
        }
    }
}
