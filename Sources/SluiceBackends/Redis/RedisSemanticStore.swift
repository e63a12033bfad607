import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SluiceDomain

/// The semantic cache in shared mode: every SEM change goes into one Redis stream,
/// `sluice:sem:log`, and every instance follows it (from the start at start-up), so an entry
/// set through one instance is found through all. Searches run on this process's index
/// (``EmbeddedSemanticStore``), which a change reaches at once on the instance that made it and
/// through the stream on the others. A change is answered once Redis has it in the stream. The
/// stream keeps about the last million changes (XADD MAXLEN ~). SEM.CONFIG stays per instance.
///
/// The stream also brings an instance's own changes back, after every change made before them;
/// ``OwnSemanticChanges`` keeps this instance's sets and deletes until the tail passes them, and
/// the tail applies an older change of such an entry and this instance's latest one in one write
/// of the namespace, so an instance does not show an older answer over its own newer one.
public final class RedisSemanticStore: SemanticStore {
    public static let stream = "sluice:sem:log"
    public let local: EmbeddedSemanticStore
    let client: RedisClient
    let tail: RedisStreamTail
    /// Taken last, briefly (never across a namespace's lock or I/O): by writers on the event
    /// loop, by a write landing under its namespace's write lock, by the tail under it too.
    let own: NIOLockedValueBox<OwnSemanticChanges>
    /// Names this process in the stream entries it adds (`origin`: `<instance>:<sequence>`).
    let instance: String
    /// The tail's own: which embedder the stream binds each namespace to.
    let bindings = NIOLockedValueBox(StreamBindings())
    /// Its monotonic clock dates the records in `own`.
    let time: any TimeSource

    public init(local: EmbeddedSemanticStore, client: RedisClient, logger: Logger, time: any TimeSource = SystemClock()) {
        self.local = local
        self.client = client
        self.time = time
        let own = NIOLockedValueBox(OwnSemanticChanges())
        self.own = own
        let instance = String(UInt64.random(in: 1 ... .max), radix: 16)
        self.instance = instance
        let cache = local.cache
        let streamKey = ByteBuffer(string: Self.stream)
        let bindings = bindings
        self.tail = RedisStreamTail(endpoint: { client.sessionEndpoint(forKey: streamKey, attempt: $0) }, stream: Self.stream, logger: logger) { id, fields in
            guard let change = Self.decode(fields) else { return }
            let origin = fields["origin"].flatMap { Self.sequence(in: String(buffer: $0), of: instance) }
            let bound = bindings.withLockedValue { $0.met(change) }
            Self.follow(change, id: OwnSemanticChanges.StreamID(id), origin: origin, bound: bound, own: own, cache: cache,
                        now: time.monotonicMilliseconds())
        }
    }

    /// The tail's step. A set or delete is applied, with all it does, and this instance's latest
    /// change of the entry after it, in one write of the namespace: no reader sees the older
    /// answer, and a write of the entry lands either before (and is applied again here) or after.
    /// `bound`: the embedder the stream binds a set's namespace to (``StreamBindings``); a
    /// namespace this instance bound otherwise is emptied and made again from this set.
    static func follow(_ change: SemanticChange, id: OwnSemanticChanges.StreamID?, origin: UInt64?, bound: StreamBindings.Binding?,
                       own: NIOLockedValueBox<OwnSemanticChanges>, cache: SemanticCache, now: Int64) {
        switch change {
        case .set, .delete:
            // A set creates its namespace, as everywhere; a delete does not.
            let create = if case .set = change { true } else { false }
            let ran = cache.replay(change.namespace, create: create, [
                { namespace in
                    if StreamBindings.differs(namespace, from: bound) { namespace.unbind() }
                    change.apply(to: &namespace, of: cache)
                },
                { namespace in
                    for mine in own.withLockedValue({ $0.passed(change, at: id, ownSequence: origin, now: now) }) {
                        mine.apply(to: &namespace, of: cache)
                    }
                },
            ])
            // No such namespace here (a delete): the records are kept all the same.
            if !ran { _ = own.withLockedValue { $0.passed(change, at: id, ownSequence: origin, now: now) } }
        case .drop, .verdicts:
            _ = own.withLockedValue { $0.passed(change, at: id, ownSequence: origin, now: now) }
            change.apply(to: cache)
        }
    }

    static func sequence(in origin: String, of instance: String) -> UInt64? {
        let parts = origin.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == instance else { return nil }
        return UInt64(parts[1])
    }

    /// The replay of what the stream held at start-up is done.
    public var isCaughtUp: Bool { tail.isCaughtUp }

    public func close() { tail.close() }

    /// XADD; fails when Redis does not take it. `sequence`: the change's record in `own`.
    func publish(_ change: SemanticChange, sequence: UInt64?, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        var args = ["XADD", Self.stream, "MAXLEN", "~", "1000000", "*"].map { ByteBuffer(string: $0) }
        for (k, v) in Self.encode(change) { args += [ByteBuffer(string: k), v] }
        if let sequence { args += [ByteBuffer(string: "origin"), ByteBuffer(string: "\(instance):\(sequence)")] }
        return client.send(args, on: eventLoop).flatMapThrowing { [own] reply in
            if case .error(let message) = reply { throw RedisError.errorReply(message) }
            guard case .bulkString(let id?) = reply else { throw RedisError.unexpectedReply("XADD: \(reply)") }
            if let sequence, let id = OwnSemanticChanges.StreamID(String(buffer: id)) { own.withLockedValue { $0.published(sequence, at: id) } }
        }.flatMapErrorThrowing { [own] error in
            if let sequence { own.withLockedValue { $0.failed(sequence) } }
            throw error
        }
    }

    /// Before this instance sets or deletes an entry: its record.
    func begin(_ change: SemanticChange) -> UInt64? {
        own.withLockedValue { $0.begin(change, now: time.monotonicMilliseconds()) }
    }

    /// Marks the record landed, from under the namespace's write lock.
    func landing(_ sequence: UInt64?) -> (@Sendable () -> Void)? {
        guard let sequence else { return nil }
        let own = own
        return { own.withLockedValue { $0.landed(sequence) } }
    }

    // MARK: SemanticStore

    public func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        // Chained, not matched on `.ready`: a large namespace answers later, from its lane,
        // and its changes must reach the stream all the same.
        let change = SemanticChange(entry)
        let sequence = begin(change)
        return local.set(entry, on: eventLoop, landing: landing(sequence)).flatMap { [self] result in
            guard case .success = result else {
                if let sequence { own.withLockedValue { $0.failed(sequence) } }
                return .ready(result)
            }
            return .later(publish(change, sequence: sequence, on: eventLoop).map { .success(()) })
        }
    }

    public func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>> {
        local.get(query, now: now, on: eventLoop)
    }

    public func feedback(_ query: SemanticQuery, good: Bool, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Feedback?, SemanticFailure>> {
        // The verdicts are recorded as they land (which entry they judge is known only there).
        let recorded = NIOLockedValueBox<UInt64?>(nil)
        let landing: @Sendable (SemanticCache.Feedback) -> Void = { [own, time] feedback in
            let change = SemanticChange(feedback, namespace: query.namespace)
            let sequence = own.withLockedValue { $0.record(verdicts: change, now: time.monotonicMilliseconds()) }
            recorded.withLockedValue { $0 = sequence }
        }
        return local.feedback(query, good: good, now: now, on: eventLoop, landing: landing).flatMap { [self] result in
            guard case .success(let feedback?) = result else { return .ready(result) }
            let sequence = recorded.withLockedValue { $0 }
            return .later(publish(SemanticChange(feedback, namespace: query.namespace), sequence: sequence, on: eventLoop).map { .success(feedback) }
                .flatMapErrorThrowing { [local] error in
                    // Not in the stream: take it back here, so this instance holds nothing the
                    // others cannot see (a deleting verdict cannot be taken back: the entry is gone).
                    if !feedback.deleted {
                        _ = local.cache.write(query.namespace, create: false) {
                            $0.restoreVerdicts(feedback.previous, ifStill: feedback.verdicts, prompt: feedback.prompt, scope: feedback.scope,
                                               createdAt: feedback.createdAt)
                        }
                    }
                    throw error
                })
        }
    }

    // A delete is published even when this instance held nothing: one refused with TRYAGAIN
    // (Redis down) was already applied here, and only its retry can reach the others.
    public func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Result<Bool, SemanticFailure>> {
        let change = SemanticChange.delete(namespace: namespace, scope: scope, prompt: prompt)
        let sequence = begin(change)
        return local.delete(namespace: namespace, prompt: prompt, scope: scope, on: eventLoop, landing: landing(sequence)).flatMap { [self] result in
            guard case .success(let deleted) = result else {
                if let sequence { own.withLockedValue { $0.failed(sequence) } }
                return .ready(result)
            }
            return .later(publish(change, sequence: sequence, on: eventLoop).map { .success(deleted) })
        }
    }

    public func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Result<Int, SemanticFailure>> {
        local.drop(namespace: namespace, on: eventLoop).flatMap { [self] result in
            guard case .success(let removed) = result else { return .ready(result) }
            own.withLockedValue { $0.forget(namespace: namespace) }
            return .later(publish(.drop(namespace: namespace), sequence: nil, on: eventLoop).map { .success(removed) })
        }
    }

    public func statistics() -> SemanticCache.Statistics {
        local.statistics()
    }

    public func stillAnswers(namespace: String, scope: String, prompt: String, createdAt: Int64, answer: ByteBuffer, score: Float, minScore: Float?, query: String?, now: Int64) -> Bool {
        local.stillAnswers(namespace: namespace, scope: scope, prompt: prompt, createdAt: createdAt, answer: answer, score: score, minScore: minScore, query: query, now: now)
    }

    public func info(namespace: String) -> SemanticCache.Info? {
        local.info(namespace: namespace)
    }

    public func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>> {
        local.configure(namespace: namespace, minScore: minScore, maxEntries: maxEntries, on: eventLoop)
    }

    // MARK: Stream entries

    static func encode(_ change: SemanticChange) -> [(String, ByteBuffer)] {
        switch change {
        case .set(let ns, let scope, let prompt, let response, let embedder, let vector, let createdAt, let expiresAt, let worth):
            var blob = ByteBuffer()
            for x in vector { blob.writeInteger(x.bitPattern, endianness: .little) }
            var fields = [("op", ByteBuffer(string: "set")), ("ns", ByteBuffer(string: ns)), ("scope", ByteBuffer(string: scope)),
                          ("prompt", ByteBuffer(string: prompt)), ("response", response), ("embedder", ByteBuffer(string: embedder)),
                          ("vector", blob), ("created", ByteBuffer(string: String(createdAt))), ("expires", ByteBuffer(string: String(expiresAt)))]
            if worth.countsSavings {
                // Only when set: entries without them stay as instances of earlier versions wrote them.
                fields += [("tokens", ByteBuffer(string: String(worth.tokens))), ("cost", ByteBuffer(string: String(worth.cost))),
                           ("tag", ByteBuffer(string: SavingsTags.shared.name(of: worth.tag)))]
            }
            return fields
        case .delete(let ns, let scope, let prompt):
            return [("op", ByteBuffer(string: "del")), ("ns", ByteBuffer(string: ns)), ("scope", ByteBuffer(string: scope)),
                    ("prompt", ByteBuffer(string: prompt))]
        case .drop(let ns):
            return [("op", ByteBuffer(string: "drop")), ("ns", ByteBuffer(string: ns))]
        case .verdicts(let ns, let scope, let prompt, let createdAt, let verdicts):
            return [("op", ByteBuffer(string: "verdicts")), ("ns", ByteBuffer(string: ns)), ("scope", ByteBuffer(string: scope)),
                    ("prompt", ByteBuffer(string: prompt)), ("created", ByteBuffer(string: String(createdAt))),
                    ("verdicts", ByteBuffer(string: verdicts.encoded))]
        }
    }

    static func decode(_ f: [String: ByteBuffer]) -> SemanticChange? {
        func text(_ k: String) -> String? { f[k].map { String(buffer: $0) } }
        guard let op = text("op"), let ns = text("ns") else { return nil }
        switch op {
        case "set":
            guard let scope = text("scope"), let prompt = text("prompt"), let response = f["response"], let embedder = text("embedder"),
                  var blob = f["vector"], let created = text("created").flatMap({ Int64($0) }),
                  let expires = text("expires").flatMap({ Int64($0) }) else { return nil }
            var vector: [Float] = []
            while let bits = blob.readInteger(endianness: .little, as: UInt32.self) { vector.append(Float(bitPattern: bits)) }
            // Tokens and cost as a client could have sent them: the same bounds as SEM.SET's.
            let tokens = text("tokens").flatMap { Int64($0) }.map { min(max($0, 0), EntryMeta.maxTokens) } ?? 0
            let cost = text("cost").flatMap { Double($0) }.map { $0.isFinite ? min(max($0, 0), EntryMeta.maxCost) : 0 } ?? 0
            let tag = text("tag").map { SavingsTags.shared.id(for: String($0.prefix(SavingsTags.maxNameLength))) } ?? SavingsTags.none
            return .set(namespace: ns, scope: scope, prompt: prompt, response: response, embedder: embedder, vector: vector,
                        createdAt: created, expiresAt: expires, worth: AnswerWorth(tokens: tokens, cost: cost, tag: tag))
        case "del":
            guard let scope = text("scope"), let prompt = text("prompt") else { return nil }
            return .delete(namespace: ns, scope: scope, prompt: prompt)
        case "drop":
            return .drop(namespace: ns)
        case "verdicts":
            guard let scope = text("scope"), let prompt = text("prompt"), let created = text("created").flatMap({ Int64($0) }),
                  let verdicts = text("verdicts").flatMap(Verdicts.init(encoded:)) else { return nil }
            return .verdicts(namespace: ns, scope: scope, prompt: prompt, createdAt: created, verdicts)
        default:
            return nil
        }
    }
}
