import Testing
@testable import SluiceDomain

/// The read-modify-writes decided as redis-server decides them (the end-to-end differential
/// test checks the same against a real redis-server with random sequences).
@Suite("Key operations (Redis semantics)")
struct KeyOperationTests {
    let now: Int64 = 1_000_000
    let max = 1 << 20

    func string(_ s: String, expiresAt: Int64 = 0) -> (bytes: ArraySlice<UInt8>, meta: EntryMeta) {
        (Array(s.utf8)[...], EntryMeta(createdAt: 1, expiresAt: expiresAt, tokens: 50, cost: 0.2))
    }

    func hash(_ pairs: [(String, String)]) -> (bytes: ArraySlice<UInt8>, meta: EntryMeta) {
        let fields = HashFields(pairs: pairs.map { (Array($0.0.utf8), Array($0.1.utf8)) })
        return (fields.encoded()[...], EntryMeta(createdAt: 1, expiresAt: 0, kind: .hash))
    }

    func run(_ op: KeyOperation, _ current: (bytes: ArraySlice<UInt8>, meta: EntryMeta)?) -> KeyOperationOutcome {
        op.apply(to: current, now: now, maxValueBytes: max)
    }

    @Test func incrementsKeepTheExpiryAndDropTheSavings() {
        let out = run(.incrementBy(5), string("10", expiresAt: now + 100))
        #expect(out.reply == .integer(15))
        #expect(out.change == .write(Array("15".utf8), EntryMeta(createdAt: now, expiresAt: now + 100)))
        #expect(run(.incrementBy(-3), nil).reply == .integer(-3))
    }

    @Test func incrementsRefuseWhatRedisRefuses() {
        for text in ["abc", "01", "+1", " 1", "1 ", "", "1.5", "99999999999999999999", "-0"] {
            #expect(run(.incrementBy(1), string(text)) == KeyOperationOutcome(.none, .notInteger), "\(text)")
        }
        #expect(run(.incrementBy(1), string("9223372036854775807")).reply == .overflow)
        #expect(run(.incrementBy(-1), string("-9223372036854775808")).reply == .overflow)
        #expect(run(.incrementBy(1), hash([("f", "1")])).reply == .wrongType)
        #expect(run(.incrementBy(1), string("-9223372036854775807")).reply == .integer(-9_223_372_036_854_775_806))
    }

    @Test func floatIncrementsPrintAsRedisDoes() {
        #expect(run(.incrementByFloat(0.1, text: []), string("10.5")).reply == .bulk(Array("10.6".utf8)))
        #expect(run(.incrementByFloat(2, text: []), string("3")).reply == .bulk(Array("5".utf8)))
        #expect(run(.incrementByFloat(-1.5, text: []), nil).reply == .bulk(Array("-1.5".utf8)))
        #expect(run(.incrementByFloat(5, text: []), string("1e3")).reply == .bulk(Array("1005".utf8)))
        #expect(run(.incrementByFloat(1, text: []), string("abc")).reply == .notFloat)
        #expect(run(.incrementByFloat(nil, text: []), string("1")).reply == .notFloat)
        #expect(run(.incrementByFloat(nil, text: []), hash([])).reply == .wrongType)
        #if arch(x86_64)
        // Float80's range: 1e4932 is finite, doubling the largest is not.
        #expect(run(.incrementByFloat(RedisNumbers.LongDouble.greatestFiniteMagnitude, text: []), string("1e4932")).reply == .notFinite)
        #endif
    }

    @Test func appendGrowsWithinTheBound() {
        #expect(run(.append(Array("def".utf8)), string("abc")).reply == .integer(6))
        #expect(run(.append(Array("x".utf8)), nil).change == .write(Array("x".utf8), EntryMeta(createdAt: now)))
        #expect(KeyOperation.append([UInt8](repeating: 1, count: 10)).apply(to: string("12345"), now: now, maxValueBytes: 12).reply == .tooLarge)
    }

    @Test func getDeleteAndGetExpire() {
        #expect(run(.getAndDelete, string("v")) == KeyOperationOutcome(.delete, .bulk(Array("v".utf8))))
        #expect(run(.getAndDelete, nil) == KeyOperationOutcome(.none, .bulk(nil)))
        #expect(run(.getAndDelete, hash([])).reply == .wrongType)
        let persisted = run(.getAndExpire(.persist, options: []), string("v", expiresAt: now + 5))
        #expect(persisted.change == .write(Array("v".utf8), EntryMeta(createdAt: 1, expiresAt: 0, tokens: 50, cost: 0.2)))
        #expect(run(.getAndExpire(.at(now), options: []), string("v")).change == .delete)
        #expect(run(.getAndExpire(.invalid(.notInteger), options: []), nil).reply == .bulk(nil))
        #expect(run(.getAndExpire(.invalid(.notInteger), options: []), string("v")).reply == .notInteger)
    }

    @Test func setWithGetKeepTTLAndConditions() {
        let old = string("old", expiresAt: now + 50)
        #expect(run(.set(Array("new".utf8), expiry: .keep, condition: .always, returnOld: true), old)
            == KeyOperationOutcome(.write(Array("new".utf8), EntryMeta(createdAt: now, expiresAt: now + 50)), .bulk(Array("old".utf8))))
        #expect(run(.set([], expiry: .unchanged, condition: .ifAbsent, returnOld: true), old) == KeyOperationOutcome(.none, .bulk(Array("old".utf8))))
        #expect(run(.set([], expiry: .unchanged, condition: .ifPresent, returnOld: true), nil) == KeyOperationOutcome(.none, .bulk(nil)))
        #expect(run(.set([], expiry: .unchanged, condition: .always, returnOld: true), hash([])).reply == .wrongType)
        // SET over a hash without GET replaces it with a string.
        #expect(run(.set(Array("s".utf8), expiry: .unchanged, condition: .always, returnOld: false), hash([])).change
            == .write(Array("s".utf8), EntryMeta(createdAt: now)))
        // An absolute expiry already past deletes the key (Redis 7).
        #expect(run(.set([], expiry: .at(now - 1), condition: .always, returnOld: false), old).change == .delete)
        #expect(run(.set([], expiry: .at(now - 1), condition: .always, returnOld: false), nil).change == .none)
    }

    @Test func expireConditionsTreatNoExpiryAsForever() {
        let forever = string("v"), timed = string("v", expiresAt: now + 100)
        #expect(run(.expire(at: now + 10, condition: .ifNone), forever).reply == .integer(1))
        #expect(run(.expire(at: now + 10, condition: .ifNone), timed).reply == .integer(0))
        #expect(run(.expire(at: now + 10, condition: .ifSet), forever).reply == .integer(0))
        #expect(run(.expire(at: now + 200, condition: .ifLater), forever).reply == .integer(0))
        #expect(run(.expire(at: now + 200, condition: .ifLater), timed).reply == .integer(1))
        #expect(run(.expire(at: now + 50, condition: .ifLater), timed).reply == .integer(0))
        #expect(run(.expire(at: now + 50, condition: .ifEarlier), forever).reply == .integer(1))
        #expect(run(.expire(at: now + 500, condition: .ifEarlier), timed).reply == .integer(0))
        #expect(run(.expire(at: now, condition: .always), forever) == KeyOperationOutcome(.delete, .integer(1)))
        #expect(run(.expire(at: now + 1, condition: .always), nil).reply == .integer(0))
        #expect(run(.persist, timed).reply == .integer(1))
        #expect(run(.persist, forever).reply == .integer(0))
        // Any type: a hash's expiry too.
        #expect(run(.expire(at: now + 9, condition: .always), hash([("a", "1")])).reply == .integer(1))
    }

    @Test func hashWritesCountNewFieldsAndDeleteTheKeyWhenEmpty() {
        let pairs = [KeyOperation.HashPair(Array("a".utf8), Array("1".utf8)), KeyOperation.HashPair(Array("b".utf8), Array("2".utf8)),
                     KeyOperation.HashPair(Array("a".utf8), Array("3".utf8))]
        let created = run(.hashSet(pairs, onlyIfNew: false), nil)
        #expect(created.reply == .integer(2))
        guard case .write(let bytes, let meta) = created.change else { Issue.record("not written"); return }
        #expect(meta.kind == .hash)
        #expect(HashFields.decode(bytes[...]) == HashFields(pairs: [(Array("a".utf8), Array("3".utf8)), (Array("b".utf8), Array("2".utf8))]))
        #expect(run(.hashSet([pairs[0]], onlyIfNew: true), hash([("a", "x")])) == KeyOperationOutcome(.none, .integer(0)))
        #expect(run(.hashSet([pairs[0]], onlyIfNew: false), string("s")).reply == .wrongType)
        #expect(run(.hashDelete([Array("a".utf8)]), hash([("a", "1")])) == KeyOperationOutcome(.delete, .integer(1)))
        #expect(run(.hashDelete([Array("z".utf8)]), hash([("a", "1")])) == KeyOperationOutcome(.none, .integer(0)))
        #expect(run(.hashDelete([Array("a".utf8)]), string("s")).reply == .wrongType)
        #expect(run(.hashDelete([Array("a".utf8)]), nil).reply == .integer(0))
    }

    @Test func aLargeHashSetCountsOnlyNewFields() {
        // 50,000 fields in one HSET into a 50,000-field hash, half of them new (set through one
        // index; a field-by-field search would take billions of compares here).
        var fields = HashFields()
        _ = fields.set(all: (0..<50_000).map { (Array("f\($0)".utf8), [UInt8(1)]) })
        let more = (25_000..<75_000).map { KeyOperation.HashPair(Array("f\($0)".utf8), [2]) }
        let out = KeyOperation.hashSet(more, onlyIfNew: false).apply(to: (fields.encoded()[...], EntryMeta(createdAt: 0, kind: .hash)),
                                                                    now: now, maxValueBytes: 1 << 24)
        #expect(out.reply == .integer(25_000))
    }

    @Test func hashEncodingRoundTripsAndRejectsDamage() {
        let fields = HashFields(pairs: [([], []), (Array("k".utf8), Array("v".utf8))])
        let bytes = fields.encoded()
        #expect(bytes.count == fields.encodedCount)
        #expect(HashFields.decode(bytes[...]) == fields)
        #expect(HashFields.decode(bytes.dropLast()) == nil)
        #expect(HashFields.decode([255, 255, 255, 255][...]) == nil)
        #expect(HashFields.decode((bytes + [0])[...]) == nil)
    }
}

@Suite("Redis numbers")
struct RedisNumbersTests {
    @Test func integersAreStrict() {
        #expect(RedisNumbers.integer(Array("0".utf8)) == 0)
        #expect(RedisNumbers.integer(Array("-9223372036854775808".utf8)) == .min)
        #expect(RedisNumbers.integer(Array("9223372036854775807".utf8)) == .max)
        for bad in ["9223372036854775808", "-9223372036854775809", "00", "-0", "-", "+5", "5 ", "0x1", "１"] {
            #expect(RedisNumbers.integer(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func longDoublesParseAndPrint() {
        #expect(RedisNumbers.longDouble(Array(" 1".utf8)) == nil)
        #expect(RedisNumbers.longDouble(Array("nan".utf8)) == nil)
        #expect(RedisNumbers.longDouble(Array("1e99999".utf8)) == nil)
        #expect(RedisNumbers.longDouble(Array("1.5x".utf8)) == nil)
        #expect(RedisNumbers.longDouble(Array("1e3".utf8)) == 1000)
        #expect(RedisNumbers.humanString(3) == "3")
        #expect(RedisNumbers.humanString(-0.0) == "0")
        #expect(RedisNumbers.humanString(0.25) == "0.25")
    }
}

@Suite("Glob patterns")
struct GlobPatternTests {
    func m(_ p: String, _ k: String) -> Bool { GlobPattern(Array(p.utf8)).matches(Array(k.utf8)) }

    @Test func redisGlobRules() {
        #expect(m("*", ""))
        #expect(m("user:*", "user:42"))
        #expect(!m("user:*", "use"))
        #expect(m("h?llo", "hello") && !m("h?llo", "hllo"))
        #expect(m("h[ae]llo", "hallo") && !m("h[ae]llo", "hillo"))
        #expect(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"))
        #expect(m("h[a-b]llo", "hbllo") && m("h[b-a]llo", "hallo"))
        #expect(m("a\\*b", "a*b") && !m("a\\*b", "axb"))
        #expect(m("*a*b*c*", "xxaxxbxxcxx") && !m("*a*b*c*", "xxaxxcxxbxx"))
        #expect(m("stay:1?", "stay:12") && !m("stay:1?", "stay:123"))
    }

    @Test func hostilePatternsAnswerCorrectly() {
        // Exponential for a naive recursive matcher; backtracking over the last star only here.
        let pattern = String(repeating: "*a", count: 200) + "b"
        #expect(!m(pattern, String(repeating: "a", count: 5000)))
    }
}

@Suite("SCAN cursors")
struct ScanCursorsTests {
    @Test func resumeAfterTheirKeyAndForgetTheOldestPastTheBound() {
        var cursors = ScanCursors(capacity: 3, seed: 1)
        let a = cursors.cursor(after: [1])
        let b = cursors.cursor(after: [2])
        #expect(a != 0 && b != 0 && a != b)
        #expect(cursors.lookup(0) == .start)
        #expect(cursors.lookup(a) == .after([1]))
        _ = cursors.cursor(after: [3])
        _ = cursors.cursor(after: [4])
        #expect(cursors.lookup(a) == .unknown)
        #expect(cursors.lookup(b) == .after([2]))
        #expect(cursors.count == 3)
        #expect(cursors.lookup(12345) == .unknown)
    }

    @Test func keysTakeTheirBytesOfTheBound() {
        var cursors = ScanCursors(capacity: 100, seed: 2)
        let big = [UInt8](repeating: 7, count: ScanCursors.maxBytes / 2 + 1)
        let first = cursors.cursor(after: big)
        let second = cursors.cursor(after: big)
        #expect(cursors.lookup(first) == .unknown)  // two would exceed the bytes
        #expect(cursors.lookup(second) == .after(big))
        let small = cursors.cursor(after: [1])
        #expect(cursors.lookup(small) == .after([1]))
        #expect(cursors.bytes <= ScanCursors.maxBytes)
    }
}
