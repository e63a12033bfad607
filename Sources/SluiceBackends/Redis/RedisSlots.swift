import Logging
import NIOCore
import SluiceDomain

/// Concurrency slots shared by every instance (shared mode): each key's holders and queue live
/// in Redis and change only inside `Lua/slot_queue.lua`, so `max_in_flight` holds across all
/// instances at once. A request that waits is a promise here, as in ``EmbeddedRateLimits``; the
/// slot reaches it from whichever instance freed one:
///
/// - the script PUBLISHes each grant on the channel of the waiter's instance
///   (`sluice:slots:<instance>`), which this instance follows with a subscription of its own;
/// - each key with waiters here has one timer: at the first of its local waits to end (each
///   ended one is taken out of the queue by the script, which says whether a grant beat it) and
///   the queue's next lease end, told by the script or by another instance's wake-up notice;
/// - after a break in the subscription every waiter here asks the script where it stands,
///   since grants sent meanwhile are lost.
///
/// Nothing waits on a thread; no lock is held across a call to Redis.
public final class RedisSlots: Sendable {
    public let script: SlotScript
    let time: any TimeSource
    public let channel: String
    let logger: Logger

    struct Waiting {
        let promise: EventLoopPromise<Result<SlotDecision, LimitError>>
        let key: ByteBuffer
        /// When its wait ends (this process's monotonic ms).
        let deadline: Int64
        let eventLoop: any EventLoop
        var position = 0
        var estimate: Int64 = 0
    }

    let waiting = Locked<[UInt64: Waiting]>([:])

    struct KeyTimer {
        let at: Int64
        let task: Scheduled<Void>
    }

    let timers = Locked<[ByteBuffer: KeyTimer]>([:])
    let subscriber = Locked<RedisSubscriber?>(nil)

    public init(script: SlotScript, time: any TimeSource = SystemClock(), logger: Logger = Logger(label: "sluice.slots")) {
        self.script = script
        self.time = time
        self.channel = "sluice:slots:\(RandomID.next())"
        self.logger = logger
    }

    /// Follows this instance's grant channel.
    public func start() {
        let s = RedisSubscriber(endpoint: script.client.endpoint, channels: [channel], logger: logger,
                                onSubscribed: { [weak self] _ in self?.resync() }) { [weak self] payload in
            self?.received(payload)
        }
        subscriber.withLockedValue { $0 = s }
    }

    public var isSubscribed: Bool { subscriber.withLockedValue { $0?.isSubscribed ?? false } }

    public func close() {
        subscriber.withLockedValue { $0?.close() }
    }

    /// Waiters of this instance (tests).
    public var waiterCount: Int { waiting.withLockedValue { $0.count } }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        let ticket = request.ticket
        guard request.wait > 0 else {
            return .later(script.acquire(key, request, channel: "", now: now, on: eventLoop).map { [self] reply in
                deliver(reply.grants)
                return .success(Self.decision(reply, ticket: ticket))
            })
        }
        // Registered before the script runs: the grant may come through the subscription
        // before the script's own reply is read.
        let owned = ByteBuffer.owned(key)
        let promise = eventLoop.makePromise(of: Result<SlotDecision, LimitError>.self)
        let deadline = time.monotonicMilliseconds().addingSaturating(request.wait)
        waiting.withLockedValue { $0[ticket] = Waiting(promise: promise, key: owned, deadline: deadline, eventLoop: eventLoop) }
        script.acquire(key, request, channel: channel, now: now, on: eventLoop).whenComplete { [self] result in
            switch result {
            case .failure(let error):
                // Redis could not answer: the Redis-down policy decides (FallbackRateLimits).
                if let w = waiting.withLockedValue({ $0.removeValue(forKey: ticket) }) { w.promise.fail(error) }
            case .success(let reply):
                deliver(reply.grants)
                if reply.kind == 2 {
                    waiting.withLockedValue { all in
                        all[ticket]?.position = Int(reply.a)
                        all[ticket]?.estimate = reply.b
                    }
                    arm(owned, wake: reply.wake, on: eventLoop)
                } else {
                    complete(ticket, with: .success(Self.decision(reply, ticket: ticket)))
                }
            }
        }
        return .later(promise.futureResult)
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        .later(script.call(.release, key, slot: slot, now: now, on: eventLoop).map { [self] reply in
            deliver(reply.grants)
            return reply.kind == 1
        })
    }

    /// The client went away: out of the queue; a slot granted meanwhile is answered as granted
    /// (the command gives it back, its client being gone).
    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        guard let loop = waiting.withLockedValue({ $0[ticket]?.eventLoop }) else { return }
        end(ticket, key: key, on: loop)
    }

    /// Ends a local wait in the script: granted if a grant beat it, else not granted.
    func end(_ ticket: UInt64, key: ByteBuffer, on eventLoop: any EventLoop) {
        script.call(.cancel, key, slot: ticket, now: time.monotonicMilliseconds(), on: eventLoop).whenComplete { [self] result in
            if case .success(let reply) = result, reply.b == 1 {
                complete(ticket, with: .success(.granted(ticket)))
            } else {
                // Failed: Redis is down and nothing can be granted through it; the wait is over.
                answerNotGranted(ticket)
            }
        }
    }

    static func decision(_ reply: SlotScript.Reply, ticket: UInt64) -> SlotDecision {
        switch reply.kind {
        case 1: return .granted(ticket)
        default: return SlotDecision(granted: false, slot: nil, queuePosition: Int(reply.a), estimatedWait: reply.b)
        }
    }

    /// Grants the script returned: the ones for waiters here are answered at once (the
    /// published copy then finds nothing).
    func deliver(_ grants: [SlotQueue.Grant]) {
        for g in grants { complete(g.waiter, with: .success(.granted(g.waiter, waited: g.waited))) }
    }

    func complete(_ ticket: UInt64, with answer: Result<SlotDecision, LimitError>) {
        guard let w = waiting.withLockedValue({ $0.removeValue(forKey: ticket) }) else { return }
        w.promise.succeed(answer)
    }

    func answerNotGranted(_ ticket: UInt64) {
        guard let w = waiting.withLockedValue({ $0.removeValue(forKey: ticket) }) else { return }
        w.promise.succeed(.success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
    }

    /// A message on this instance's channel: `g <slot> <waited>` (a grant) or
    /// `w <ms> <key>` (the key's queue needs a tick in ms).
    func received(_ payload: ByteBuffer) {
        let bytes = Array(payload.readableBytesView)
        guard bytes.count > 2, bytes[1] == UInt8(ascii: " ") else { return }
        let rest = bytes[2...]
        guard let space = rest.firstIndex(of: UInt8(ascii: " ")) else { return }
        let word = String(decoding: rest[rest.startIndex..<space], as: UTF8.self)
        let tail = rest[(space + 1)...]
        switch bytes[0] {
        case UInt8(ascii: "g"):
            guard let slot = UInt64(word), let waited = Int64(String(decoding: tail, as: UTF8.self)) else { return }
            complete(slot, with: .success(.granted(slot, waited: waited)))
        case UInt8(ascii: "w"):
            let key = ByteBuffer(bytes: tail)
            guard let wake = Int64(word),
                  let loop = waiting.withLockedValue({ all in all.values.first(where: { $0.key == key })?.eventLoop }) else { return }
            arm(key, wake: wake, on: loop)
        default:
            return
        }
    }

    /// After (re)subscribing: grants sent while unsubscribed were lost; ask where each waiter
    /// here stands.
    func resync() {
        let all = waiting.withLockedValue { $0.map { ($0.key, $0.value.key, $0.value.eventLoop) } }
        for (ticket, key, loop) in all {
            script.call(.status, key, slot: ticket, now: time.monotonicMilliseconds(), on: loop).whenSuccess { [self] reply in
                switch reply.kind {
                case 2: complete(ticket, with: .success(.granted(ticket)))
                case 1: return
                default: answerNotGranted(ticket)
                }
            }
        }
    }

    /// Arms the key's timer for the first of its local waits to end and the queue's own next
    /// event (`wake` ms from now; nil: none). A key with no local waiter has no timer.
    func arm(_ key: ByteBuffer, wake: Int64?, on eventLoop: any EventLoop) {
        let now = time.monotonicMilliseconds()
        let firstDeadline = waiting.withLockedValue { all in all.values.lazy.filter { $0.key == key }.map(\.deadline).min() }
        guard let firstDeadline else { return }
        let at = min(firstDeadline, wake.map { now.addingSaturating($0) } ?? .max)
        let needed = timers.withLockedValue { all -> Bool in
            if let current = all[key], current.at <= at { return false }
            return true
        }
        guard needed else { return }
        let task = eventLoop.scheduleTask(in: .milliseconds(max(at - now, 0) + 1)) { [self] in fire(key, at: at, on: eventLoop) }
        let replaced = timers.withLockedValue { all -> Scheduled<Void>? in
            if let current = all[key], current.at <= at { return task }
            let old = all[key]?.task
            all[key] = KeyTimer(at: at, task: task)
            return old
        }
        replaced?.cancel()
    }

    /// The key's timer: end the local waits that are over, tick the queue (its grants are
    /// published and delivered), and arm the next.
    func fire(_ key: ByteBuffer, at: Int64, on eventLoop: any EventLoop) {
        let mine = timers.withLockedValue { all -> Bool in
            guard let current = all[key], current.at == at else { return false }
            all[key] = nil
            return true
        }
        guard mine else { return }
        let now = time.monotonicMilliseconds()
        let over = waiting.withLockedValue { all in all.filter { $0.value.key == key && $0.value.deadline <= now }.map(\.key) }
        for ticket in over { end(ticket, key: key, on: eventLoop) }
        script.run(.tick, key, now: now, [], on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let reply):
                deliver(reply.grants)
                arm(key, wake: reply.wake, on: eventLoop)
            case .failure:
                // Redis is away: look again in a second (the local waits still end on time).
                arm(key, wake: 1_000, on: eventLoop)
            }
        }
    }
}
