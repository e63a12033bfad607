import Histogram
import NIOCore
import SluiceDomain

/// One load connection: sends a batch of `pipeline` requests, reads the replies back (counted by
/// ``ReplyScanner``, timed from the batch's write), then claims and sends the next batch, until
/// the budget is spent. Its histograms belong to its event loop: nothing is shared per request.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Outcome {
        /// Latency in ns per command of the plan's mix, in mix order.
        var histograms: [Histogram<UInt64>]
        var errors: [Int]
        var firstError: String?
    }

    let plan: LoadPlan
    let budget: LoadBudget
    let keys: KeyPicker
    let prefill: Bool
    let done: EventLoopPromise<Outcome>
    var outcome: Outcome
    var random: SplitMix64
    /// Cumulative weights of the mix.
    let weights: [Int]
    let totalWeight: Int
    let value: ByteBuffer
    /// Per command of the mix; nil: written in full each time.
    let templates: [LoadCommand.Template?]
    var outgoing = ByteBuffer()
    var incoming = ByteBuffer()
    /// The command (index in the mix) of each request in flight, in order.
    var inFlight: [UInt8] = []
    var answered = 0
    var batchStart = NIODeadline.now()
    var awaitingAuth = false
    var finished = false

    init(plan: LoadPlan, budget: LoadBudget, keys: KeyPicker, prefill: Bool, seed: UInt64, done: EventLoopPromise<Outcome>) {
        self.plan = plan
        self.budget = budget
        self.keys = keys
        self.prefill = prefill
        self.done = done
        random = SplitMix64(seed: seed)
        var sum = 0
        weights = plan.mix.map { sum += $0.1; return sum }
        totalWeight = sum
        value = ByteBuffer(repeating: UInt8(ascii: "x"), count: plan.valueSize)
        templates = plan.mix.map { [value] in $0.0.template(plan: plan, value: value) }
        outcome = Outcome(histograms: plan.mix.map { _ in Histogram(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three) },
                          errors: plan.mix.map { _ in 0 })
        outgoing.reserveCapacity(plan.pipeline * (64 + plan.valueSize))
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
            if let template = templates[command] {
                outgoing.writeImmutableBuffer(template.head)
                if template.hasKey { LoadCommand.writeDigits(rank, into: &outgoing) }
                outgoing.writeImmutableBuffer(template.tail)
            } else {
                plan.mix[command].0.write(rank: rank, plan: plan, value: value, into: &outgoing)
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
        } else {
            incoming.writeBuffer(&bytes)
        }
        let now = NIODeadline.now()
        let latency = UInt64(max(0, (now - batchStart).nanoseconds))
        while true {
            switch ReplyScanner.scan(incoming) {
            case .incomplete:
                if incoming.readableBytes == 0 {
                    incoming.clear()
                } else {
                    // Keep only the partial reply, in a buffer of our own (not the channel's).
                    var rest = ByteBuffer()
                    rest.writeBuffer(&incoming)
                    incoming = rest
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
        done.fail(LoadError(message: why))
        context.close(promise: nil)
    }

    func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        done.succeed(outcome)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { fail(context: context, "the server closed the connection") }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }
}

public struct LoadError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
