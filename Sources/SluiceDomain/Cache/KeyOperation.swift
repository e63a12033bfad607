/// A read-modify-write of one key with Redis's semantics — the counters, APPEND, GETDEL, GETEX,
/// SET with GET or KEEPTTL, the expiry commands and the hash writes. ``apply(to:now:maxValueBytes:)``
/// decides it on the key's current entry as a pure function; the embedded cache runs it under
/// the key's shard lock (so it is atomic like Redis's), and shared mode sends Redis the same
/// command, where Redis decides.
public enum KeyOperation: Sendable, Equatable {
    /// EXPIRE's NX / XX / GT / LT.
    public enum ExpireCondition: Sendable, Equatable {
        case always
        /// NX: only a key without an expiry.
        case ifNone
        /// XX: only a key with one.
        case ifSet
        /// GT: only later than the current one (a key without one counts as never expiring).
        case ifLater
        /// LT: only earlier (a key without one counts as never expiring).
        case ifEarlier
    }

    /// The expiry a write leaves.
    public enum Expiry: Sendable, Equatable {
        /// SET: none; GETEX: unchanged.
        case unchanged
        /// Absolute wall-clock ms; at or before now, the key is deleted (Redis's EXAT in the past).
        case at(Int64)
        /// SET ... KEEPTTL.
        case keep
        /// GETEX ... PERSIST.
        case persist
        /// GETEX with an expiry redis-server refuses (not a number, not positive, overflowing) —
        /// refused as it does, after the key was looked up (an absent key answers nil first).
        case invalid(KeyOperationReply)
    }

    /// SET's NX / XX.
    public enum SetCondition: Sendable, Equatable {
        case always, ifAbsent, ifPresent
    }

    case incrementBy(Int64)
    /// The increment (nil: not a number, refused after the key's type and value are checked, as
    /// redis-server does), and its bytes as the client sent them (what shared mode hands Redis).
    case incrementByFloat(RedisNumbers.LongDouble?, text: [UInt8])
    case append([UInt8])
    case getAndDelete
    /// `options`: the client's words after the key, which shared mode hands Redis as they are.
    case getAndExpire(Expiry, options: [[UInt8]])
    /// SET with the options the plain write path does not take (GET, KEEPTTL).
    case set([UInt8], expiry: Expiry, condition: SetCondition, returnOld: Bool)
    case expire(at: Int64, condition: ExpireCondition)
    case persist
    /// HSET (HSETNX when `onlyIfNew`, one field): the pairs in order.
    case hashSet([HashPair], onlyIfNew: Bool)
    case hashDelete([[UInt8]])

    public struct HashPair: Sendable, Equatable {
        public var field: [UInt8]
        public var value: [UInt8]
        public init(_ field: [UInt8], _ value: [UInt8]) {
            self.field = field
            self.value = value
        }
    }

    /// Whether the operation never changes the entry (GETEX without an expiry change).
    public var onlyReads: Bool {
        if case .getAndExpire(.unchanged, _) = self { return true }
        return false
    }

    /// The operation on `current` (the key's live entry, or nil when it has none).
    /// `maxValueBytes`: the largest value a write may leave (APPEND, HSET refuse beyond it).
    public func apply(to current: (bytes: ArraySlice<UInt8>, meta: EntryMeta)?, now: Int64, maxValueBytes: Int) -> KeyOperationOutcome {
        let isHash = current?.meta.kind == .hash
        switch self {
        case .incrementBy(let by):
            if isHash { return .refuse(.wrongType) }
            var value: Int64 = 0
            if let current {
                guard let old = RedisNumbers.integer(current.bytes) else { return .refuse(.notInteger) }
                value = old
            }
            let (sum, overflow) = value.addingReportingOverflow(by)
            if overflow { return .refuse(.overflow) }
            return KeyOperationOutcome(.write(Array(String(sum).utf8), Self.meta(keeping: current?.meta, now: now)), .integer(sum))

        case .incrementByFloat(let by, _):
            if isHash { return .refuse(.wrongType) }
            var value: RedisNumbers.LongDouble = 0
            if let current {
                guard let old = RedisNumbers.longDouble(current.bytes) else { return .refuse(.notFloat) }
                value = old
            }
            guard let by else { return .refuse(.notFloat) }
            let sum = value + by
            guard sum.isFinite else { return .refuse(.notFinite) }
            let text = Array(RedisNumbers.humanString(sum).utf8)
            return KeyOperationOutcome(.write(text, Self.meta(keeping: current?.meta, now: now)), .bulk(text))

        case .append(let tail):
            if isHash { return .refuse(.wrongType) }
            let old = current?.bytes ?? []
            guard old.count + tail.count <= maxValueBytes else { return .refuse(.tooLarge) }
            let value = Array(old) + tail
            return KeyOperationOutcome(.write(value, Self.meta(keeping: current?.meta, now: now)), .integer(Int64(value.count)))

        case .getAndDelete:
            guard let current else { return .refuse(.bulk(nil)) }
            if isHash { return .refuse(.wrongType) }
            return KeyOperationOutcome(.delete, .bulk(Array(current.bytes)))

        case .getAndExpire(let expiry, _):
            guard let current else { return .refuse(.bulk(nil)) }
            if isHash { return .refuse(.wrongType) }
            let reply = KeyOperationReply.bulk(Array(current.bytes))
            var meta = current.meta
            switch expiry {
            case .invalid(let refusal):
                return .refuse(refusal)
            case .unchanged, .keep:
                return KeyOperationOutcome(.none, reply)
            case .persist:
                guard meta.expiresAt != 0 else { return KeyOperationOutcome(.none, reply) }
                meta.expiresAt = 0
            case .at(let at):
                if at <= now { return KeyOperationOutcome(.delete, reply) }
                meta.expiresAt = at
            }
            return KeyOperationOutcome(.write(Array(current.bytes), meta), reply)

        case .set(let value, let expiry, let condition, let returnOld):
            if returnOld && isHash { return .refuse(.wrongType) }
            let old: KeyOperationReply = returnOld ? .bulk(current.map { Array($0.bytes) }) : .ok
            switch condition {
            case .always: break
            case .ifAbsent: if current != nil { return .refuse(returnOld ? old : .bulk(nil)) }
            case .ifPresent: if current == nil { return .refuse(.bulk(nil)) }
            }
            var expiresAt: Int64 = 0
            switch expiry {
            case .invalid(let refusal): return .refuse(refusal)
            case .unchanged, .persist: expiresAt = 0
            case .keep: expiresAt = current?.meta.expiresAt ?? 0
            case .at(let at):
                if at <= now { return KeyOperationOutcome(current == nil ? .none : .delete, old) }
                expiresAt = at
            }
            return KeyOperationOutcome(.write(value, EntryMeta(createdAt: now, expiresAt: expiresAt)), old)

        case .expire(let at, let condition):
            guard let current else { return .refuse(.integer(0)) }
            let e = current.meta.expiresAt
            let allowed: Bool
            switch condition {
            case .always: allowed = true
            case .ifNone: allowed = e == 0
            case .ifSet: allowed = e != 0
            case .ifLater: allowed = e != 0 && at > e
            case .ifEarlier: allowed = e == 0 || at < e
            }
            guard allowed else { return .refuse(.integer(0)) }
            if at <= now { return KeyOperationOutcome(.delete, .integer(1)) }
            var meta = current.meta
            meta.expiresAt = at
            return KeyOperationOutcome(.write(Array(current.bytes), meta), .integer(1))

        case .persist:
            guard let current, current.meta.expiresAt != 0 else { return .refuse(.integer(0)) }
            var meta = current.meta
            meta.expiresAt = 0
            return KeyOperationOutcome(.write(Array(current.bytes), meta), .integer(1))

        case .hashSet(let pairs, let onlyIfNew):
            guard current == nil || isHash else { return .refuse(.wrongType) }
            var fields = HashFields()
            if let current {
                guard let decoded = HashFields.decode(current.bytes) else { return .refuse(.error("ERR the stored hash is damaged")) }
                fields = decoded
            }
            let added: Int
            if onlyIfNew {
                if fields.value(of: pairs[0].field) != nil { return .refuse(.integer(0)) }
                added = fields.set(pairs[0].field, pairs[0].value) ? 1 : 0
            } else {
                added = fields.set(all: pairs.map { ($0.field, $0.value) })
            }
            guard fields.encodedCount <= maxValueBytes else { return .refuse(.tooLarge) }
            var meta = Self.meta(keeping: current?.meta, now: now)
            meta.kind = .hash
            return KeyOperationOutcome(.write(fields.encoded(), meta), .integer(Int64(added)))

        case .hashDelete(let names):
            guard let current else { return .refuse(.integer(0)) }
            guard isHash else { return .refuse(.wrongType) }
            guard var fields = HashFields.decode(current.bytes) else { return .refuse(.error("ERR the stored hash is damaged")) }
            let removed = fields.remove(all: names)
            if removed == 0 { return .refuse(.integer(0)) }
            if fields.isEmpty { return KeyOperationOutcome(.delete, .integer(Int64(removed))) }
            return KeyOperationOutcome(.write(fields.encoded(), current.meta), .integer(Int64(removed)))
        }
    }

    /// A changed value keeps its key's expiry (as INCR, APPEND, HSET do in Redis) but not the
    /// savings it stood for: it is no longer the answer that was stored.
    static func meta(keeping old: EntryMeta?, now: Int64) -> EntryMeta {
        EntryMeta(createdAt: now, expiresAt: old?.expiresAt ?? 0)
    }
}
