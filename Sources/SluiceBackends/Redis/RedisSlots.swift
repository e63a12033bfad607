import Logging
import NIOCore
import SluiceDomain

/// Concurrency slots shared by every instance (shared mode): each key's holders and queue live
/// in Redis and change only inside `Lua/slot_queue.lua`, so `max_in_flight` holds across all
/// instances at once. A request that waits is a promise here, as in ``EmbeddedRateLimits``; the
/// slot reaches it from whichever instance freed one:
///
/// - grants to this instance's waiters made by its own script calls come back in the replies;
///   grants made by other instances arrive on this instance's channel
///   (`sluice:slots:<instance>`), followed by a subscription of its own;
/// - each key with waiters here has one timer: at the first of its local waits to end (each
///   ended one is taken out of the queue by the script, which says whether a grant beat it) and
///   the queue's first lease end, told by the script or by another instance's notice;
/// - after a break in the subscription every waiter here asks the script where it stands,
///   since grants sent meanwhile are lost;
/// - a grant nobody here waits for (its acquire timed out at this end but ran in Redis, or its
///   wait ended while the grant was on its way) is released at once, so it cannot hold a slot
///   for its lease; a grant to an instance that is gone is undone by the script itself.
///
/// Nothing waits on a thread; no lock is held across a call to Redis.
public final class RedisSlots: Sendable {
    public let script: SlotScript
    let time: any TimeSource
    public let channel: String
    let logger: Logger

    let waiters = Locked(SlotWaiters())

    let timers = KeyTimers()
    let subscriber = Locked<RedisSubscriber?>(nil)

    public init(script: SlotScript, time: any TimeSource = SystemClock(), logger: Logger = Logger(label: "sluice.slots")) {
        self.script = script
        self.time = time
        self.channel = "sluice:slots:\(RandomID.next())"
        self.logger = logger
    }

    /// Where work that no request started (releasing an orphan grant) runs.
    let backgroundLoop = Locked<(any EventLoop)?>(nil)

    /// Follows this instance's grant channel.
    public func start(on eventLoop: any EventLoop) {
        backgroundLoop.withLockedValue { $0 = eventLoop }
        let client = script.client
        let s = RedisSubscriber(endpoint: { client.sessionEndpoint(forKey: nil, attempt: $0) }, channels: [channel], logger: logger,
                                onSubscribed: { [weak self] _ in self?.resync() }) { [weak self] payload in
            self?.received(payload)
        }
        subscriber.withLockedValue { $0 = s }
    }

    public var isSubscribed: Bool { subscriber.withLockedValue { $0?.isSubscribed ?? false } }

    /// Stops following the channel; every waiter here is answered not granted (its entry in
    /// Redis ends with its wait, or is undone when a grant finds nobody listening).
    public func close() {
        let s = subscriber.withLockedValue { s -> RedisSubscriber? in
            defer { s = nil }
            return s
        }
        s?.close()
        timers.cancelAll()
        for w in waiters.withLockedValue({ $0.removeAll() }) {
            w.promise.succeed(.success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
        }
    }

    /// Waiters of this instance (STATS, tests).
    public var waiterCount: Int { waiters.withLockedValue { $0.count } }

    public func acquire(_ key: ByteBuffer, _ request: SlotRequest, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SlotDecision, LimitError>> {
        let ticket = request.ticket
        let owned = ByteBuffer.owned(key)
        guard request.wait > 0 else {
            let call = script.acquire(key, request, channel: channel, now: now, on: eventLoop)
            call.whenFailure { [self] _ in abandon(owned, ticket: ticket, on: eventLoop) }
            return .later(call.map { [self] reply in
                deliver(reply.grants)
                return .success(Self.decision(reply, ticket: ticket))
            })
        }
        // Registered before the script runs: the grant may come through the subscription
        // before the script's own reply is read.
        let promise = eventLoop.makePromise(of: Result<SlotDecision, LimitError>.self)
        let deadline = time.monotonicMilliseconds().addingSaturating(request.wait)
        waiters.withLockedValue { $0.insert(ticket, SlotWaiters.Waiting(promise: promise, key: owned, deadline: deadline, eventLoop: eventLoop)) }
        script.acquire(key, request, channel: channel, now: now, on: eventLoop).whenComplete { [self] result in
            switch result {
            case .failure(let error):
                // Redis could not answer: the Redis-down policy decides (FallbackRateLimits).
                // The request may still have reached Redis: take it back out, best effort.
                if let w = waiters.withLockedValue({ $0.remove(ticket) }) { w.promise.fail(error) }
                abandon(owned, ticket: ticket, on: eventLoop)
            case .success(let reply):
                deliver(reply.grants)
                if reply.kind == 2 {
                    waiters.withLockedValue { all in
                        all.update(ticket) { w in
                            w.position = Int(reply.a)
                            w.estimate = reply.b
                        }
                    }
                    arm(owned, leaseWake: reply.leaseWake)
                } else {
                    complete(ticket, with: .success(Self.decision(reply, ticket: ticket)))
                }
            }
        }
        return .later(promise.futureResult)
    }

    /// An acquire whose answer was lost: whatever it left in Redis — a waiter or a slot — goes.
    func abandon(_ key: ByteBuffer, ticket: UInt64, on eventLoop: any EventLoop) {
        script.call(.cancel, key, slot: ticket, now: time.monotonicMilliseconds(), channel: channel, on: eventLoop).whenSuccess { [self] reply in
            if reply.b == 1 { _ = script.call(.release, key, slot: ticket, now: time.monotonicMilliseconds(), channel: channel, on: eventLoop) }
        }
    }

    public func release(_ key: ByteBuffer, slot: UInt64, now: Int64, on eventLoop: any EventLoop) -> Deferred<Bool> {
        .later(script.call(.release, key, slot: slot, now: now, channel: channel, on: eventLoop).map { [self] reply in
            deliver(reply.grants)
            return reply.kind == 1
        })
    }

    /// The client went away: out of the queue; a slot granted meanwhile is answered as granted
    /// (the command gives it back, its client being gone).
    public func cancelWait(_ key: ByteBuffer, ticket: UInt64) {
        let loop = waiters.withLockedValue { all -> (any EventLoop)? in
            guard let w = all.byTicket[ticket], !w.ending else { return nil }
            all.update(ticket) { $0.ending = true }
            return w.eventLoop
        }
        guard let loop else { return }
        end(ticket, key: ByteBuffer.owned(key), on: loop)
    }

    /// Ends a local wait in the script: granted if a grant beat it, else not granted.
    func end(_ ticket: UInt64, key: ByteBuffer, on eventLoop: any EventLoop) {
        script.call(.cancel, key, slot: ticket, now: time.monotonicMilliseconds(), channel: channel, on: eventLoop).whenComplete { [self] result in
            if case .success(let reply) = result, reply.b == 1 {
                waiters.withLockedValue { $0.rememberGranted(ticket) }
                complete(ticket, with: .success(.granted(ticket)))
            } else {
                // Failed: Redis is away; the wait is over either way. Should the waiter still be
                // granted there, its grant finds nobody waiting and is released.
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

    /// Grants the script returned for waiters of this instance.
    func deliver(_ grants: [SlotQueue.Grant]) {
        for g in grants { complete(g.waiter, with: .success(.granted(g.waiter, waited: g.waited))) }
    }

    @discardableResult
    func complete(_ ticket: UInt64, with answer: Result<SlotDecision, LimitError>) -> Bool {
        guard let w = waiters.withLockedValue({ $0.remove(ticket) }) else { return false }
        w.promise.succeed(answer)
        return true
    }

    func answerNotGranted(_ ticket: UInt64) {
        guard let w = waiters.withLockedValue({ $0.remove(ticket) }) else { return }
        w.promise.succeed(.success(SlotDecision(granted: false, slot: nil, queuePosition: w.position, estimatedWait: w.estimate)))
    }

    /// A message on this instance's channel: `g <slot> <waited> <key>` (a grant) or
    /// `w <ms> <key>` (the key's first lease ends in ms).
    func received(_ payload: ByteBuffer) {
        let bytes = Array(payload.readableBytesView)
        guard bytes.count > 2, bytes[1] == UInt8(ascii: " ") else { return }
        switch bytes[0] {
        case UInt8(ascii: "w"):
            let fields = bytes[2...].split(separator: UInt8(ascii: " "), maxSplits: 1, omittingEmptySubsequences: false)
            guard fields.count == 2, let ms = Int64(String(decoding: fields[0], as: UTF8.self)) else { return }
            arm(ByteBuffer(bytes: fields[1]), leaseWake: max(ms, 0))
        case UInt8(ascii: "g"):
            let fields = bytes[2...].split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, let slot = UInt64(String(decoding: fields[0], as: UTF8.self)),
                  let waited = Int64(String(decoding: fields[1], as: UTF8.self)) else { return }
            if complete(slot, with: .success(.granted(slot, waited: waited))) { return }
            guard !waiters.withLockedValue({ $0.wasGranted(slot) }), let loop = backgroundLoop.withLockedValue({ $0 }) else { return }
            // Nobody here waits for it any more: give it back rather than hold it for its lease.
            _ = script.call(.release, ByteBuffer(bytes: fields[2]), slot: slot, now: time.monotonicMilliseconds(), channel: channel, on: loop)
        default:
            return
        }
    }

    /// After (re)subscribing: grants sent while unsubscribed were lost; ask where each waiter
    /// here stands.
    func resync() {
        let all = waiters.withLockedValue { $0.byTicket.map { ($0.key, $0.value.key, $0.value.eventLoop) } }
        for (ticket, key, loop) in all {
            script.call(.status, key, slot: ticket, now: time.monotonicMilliseconds(), channel: channel, on: loop).whenSuccess { [self] reply in
                switch reply.kind {
                case 2:
                    waiters.withLockedValue { $0.rememberGranted(ticket) }
                    complete(ticket, with: .success(.granted(ticket)))
                case 1: return
                default: answerNotGranted(ticket)
                }
            }
        }
    }

    /// Arms the key's timer for the first of its local waits to end and the queue's first lease
    /// end (`leaseWake` ms from now; nil: none). A key with no local waiter has no timer.
    func arm(_ key: ByteBuffer, leaseWake: Int64?) {
        let now = time.monotonicMilliseconds()
        guard let (firstDeadline, eventLoop) = waiters.withLockedValue({ $0.firstDeadline(of: key) }) else { return }
        let at = min(firstDeadline, leaseWake.map { now.addingSaturating($0) } ?? .max)
        timers.arm(key, at: at, now: now, on: eventLoop) { [self] id in fire(key, timer: id, on: eventLoop) }
    }

    /// The key's timer: end the local waits that are over, tick the queue (its grants are
    /// published and delivered), and arm the next.
    func fire(_ key: ByteBuffer, timer: UInt64, on eventLoop: any EventLoop) {
        guard timers.claim(key, id: timer) else { return }
        let now = time.monotonicMilliseconds()
        for ticket in waiters.withLockedValue({ $0.takeOver(of: key, now: now) }) { end(ticket, key: key, on: eventLoop) }
        script.run(.tick, key, now: now, channel: channel, [], on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let reply):
                deliver(reply.grants)
                arm(key, leaseWake: reply.leaseWake)
            case .failure:
                // Redis is away: look again in a second (the local waits still end on time).
                arm(key, leaseWake: 1_000)
            }
        }
    }
}
