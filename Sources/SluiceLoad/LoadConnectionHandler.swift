import Histogram
import NIOCore
import SluiceDomain

/// One load connection: sends a batch of `pipeline` requests, reads the replies back (counted by
/// ``ReplyScanner``, timed from the batch's write), then claims and sends the next batch, until
/// the budget is spent. Its histograms belong to its event loop: nothing is shared per request.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the connections of one event loop measured, together (one set of histograms per
    /// loop, not per connection: 10,000 connections must not mean 10,000 × 200 KB). Touched only
    /// on its loop while the run lasts; read after every connection has finished.
    final class Recorder: @unchecked Sendable {
        /// Latency in ns per command of the plan's mix, in mix order.
        var histograms: [Histogram<UInt64>]
        var errors: [Int]
        var firstError: String?

        init(commands: Int) {
            histograms = (0..<commands).map { _ in Histogram(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three) }
            errors = Array(repeating: 0, count: commands)
        }
    }

    /// What every connection of a run shares: the value and the request templates, built once.
    final class Shared: Sendable {
        let value: ByteBuffer
        /// Per command of the mix; nil: written in full each time.
        let templates: [LoadCommand.Template?]

        init(plan: LoadPlan) {
            let value = ByteBuffer(repeating: UInt8(ascii: "x"), count: plan.valueSize)
            self.value = value
            templates = plan.mix.map { $0.0.template(plan: plan, value: value) }
        }
    }

    let plan: LoadPlan
    let budget: LoadBudget
    let keys: KeyPicker
    let prefill: Bool
    let done: EventLoopPromise<Void>
    let outcome: Recorder
    let shared: Shared
    var random: SplitMix64
    /// Cumulative weights of the mix.
    let weights: [Int]
    let totalWeight: Int
    var outgoing = ByteBuffer()
    var incoming = ByteBuffer()
    /// Whether `incoming` is a buffer of ours (else it is the channel's last read, kept in place).
    var incomingIsOurs = true
    /// The command (index in the mix) of each request in flight, in order.
    var inFlight: [UInt8] = []
    var answered = 0
    var batchStart = NIODeadline.now()
    var awaitingAuth = false
    var finished = false

    init(plan: LoadPlan, budget: LoadBudget, keys: KeyPicker, prefill: Bool, seed: UInt64, shared: Shared, recorder: Recorder,
         done: EventLoopPromise<Void>) {
        self.plan = plan
        self.budget = budget
        self.keys = keys
        self.prefill = prefill
        self.done = done
        random = SplitMix64(seed: seed)
        var sum = 0
        weights = plan.mix.map { sum += $0.1; return sum }
        totalWeight = sum
        self.shared = shared
        outcome = recorder
        outgoing.reserveCapacity(min(plan.pipeline * (64 + plan.valueSize), 1 << 20))
    }

    func channelActive(context: ChannelHandlerContext) {
        if let password = plan.password {
            awaitingAuth = true
            outgoing.clear()
            LoadCommand.header(&outgoing, count: 2, verb: "AUTH")
            LoadCommand.bulk(&outgoing, password)
            context.writeAndFlush(wrapOutboundOut(outgoing), promise: nil)
        } else {
            sendBatch(context: context)
        }
    }

    func sendBatch(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let n = budget.claim(plan.pipeline, now: now)
        guard n > 0 else { return finish(context: context) }
        outgoing.clear()
        inFlight.removeAll(keepingCapacity: true)
        answered = 0
        for _ in 0..<n {
            let command: Int
            let rank: Int
            if prefill {
                command = 0
                rank = budget.nextRank.wrappingAdd(1, ordering: .relaxed).oldValue % plan.keyspace
            } else {
                command = pickCommand()
                rank = keys.pick(&random)
            }
            if let template = shared.templates[command] {
                outgoing.writeImmutableBuffer(template.head)
                if template.hasKey { LoadCommand.writeDigits(rank, into: &outgoing) }
                outgoing.writeImmutableBuffer(template.tail)
            } else {
                plan.mix[command].0.write(rank: rank, plan: plan, value: shared.value, into: &outgoing)
            }
            inFlight.append(UInt8(command))
        }
        batchStart = now
        context.writeAndFlush(wrapOutboundOut(outgoing), promise: nil)
    }

    func pickCommand() -> Int {
        if weights.count == 1 { return 0 }
        let r = Int(random.next() % UInt64(totalWeight))
        var i = 0
        while weights[i] <= r { i += 1 }
        return i
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        // Replies are read in place; only a reply cut by the end of a read is kept for the next.
        if incoming.readableBytes == 0 {
            swap(&incoming, &bytes)
            incomingIsOurs = false
        } else {
            incoming.writeBuffer(&bytes)
        }
        guard incoming.readableBytes <= LoadPlan.maxBatchBytes else {
            fail(context: context, "a reply larger than \(LoadPlan.maxBatchBytes >> 20) MiB")
            return
        }
        let now = NIODeadline.now()
        let latency = UInt64(max(0, (now - batchStart).nanoseconds))
        while true {
            switch ReplyScanner.scan(incoming) {
            case .incomplete:
                if incoming.readableBytes == 0 {
                    incoming.clear()
                } else if incomingIsOurs {
                    incoming.discardReadBytes()
                } else {
                    // Keep only the partial reply, once, in a buffer of our own (not the channel's).
                    var rest = ByteBuffer()
                    rest.writeBuffer(&incoming)
                    incoming = rest
                    incomingIsOurs = true
                }
                return
            case .malformed(let why):
                fail(context: context, "malformed reply: \(why)")
                return
            case .complete(let length, let isError):
                if isError && outcome.firstError == nil {
                    outcome.firstError = incoming.getString(at: incoming.readerIndex + 1, length: max(0, min(length - 3, 200)))
                }
                incoming.moveReaderIndex(forwardBy: length)
                if awaitingAuth {
                    awaitingAuth = false
                    if isError { fail(context: context, "AUTH refused: \(outcome.firstError ?? "")"); return }
                    sendBatch(context: context)
                    continue
                }
                guard answered < inFlight.count else {
                    fail(context: context, "a reply nobody asked for")
                    return
                }
                let command = Int(inFlight[answered])
                answered += 1
                if !prefill { _ = outcome.histograms[command].record(latency) }
                if isError {
                    outcome.errors[command] += 1
                    budget.errors.wrappingAdd(1, ordering: .relaxed)
                }
                if answered == inFlight.count {
                    budget.completed.wrappingAdd(inFlight.count, ordering: .relaxed)
                    sendBatch(context: context)
                    if finished { return }
                }
            }
        }
    }

    func fail(context: ChannelHandlerContext, _ why: String) {
        guard !finished else { return }
        finished = true
        // The others stop at their next batch: a failed run ends now, not when its budget is spent.
        budget.cancel()
        done.fail(LoadError(message: why))
        context.close(promise: nil)
    }

    func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        done.succeed(())
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { fail(context: context, "the server closed the connection") }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            fail(context: context, "no reply for \(plan.idleTimeoutSeconds) s")
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }
}

public struct LoadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
