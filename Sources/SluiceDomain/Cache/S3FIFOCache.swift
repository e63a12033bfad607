import Foundation
import DequeModule
import NIOCore

/// The L1 store of one shard: a byte-bounded cache with S3-FIFO eviction
/// (Yang et al., SOSP 2023). New keys enter a small FIFO (10% of the bytes); keys read again
/// while there move to the main FIFO, the rest leave after one pass and are remembered in a
/// ghost FIFO, so a key seen again soon goes straight to main. Main is a CLOCK-like FIFO
/// whose entries get one more round per read (up to 3).
///
/// Chosen over LRU by measurement (`sluice-bench eviction`): on a Zipf(0.99) trace it keeps
/// more hits for the same bytes, and a hit only bumps a counter instead of relinking a list.
///
/// A plain value type: no locks, no clock; the caller passes `now`.
public struct S3FIFOCache: Sendable {
    /// Fixed per-entry cost besides key and value bytes: the slot, the index entry, the queue
    /// entry, the entry array's header and malloc's rounding, with the slack of growing arrays.
    /// Measured, not estimated: `sluice-bench memory` shows 109–124 B for values of 10–3000 B.
    public static let entryOverhead = 128

    public struct Statistics: Sendable, Hashable {
        public var entries = 0
        public var bytes = 0
        public var evictions = 0
    }

    struct Slot: Sendable {
        /// Key bytes followed by value bytes: one exact-size allocation per entry.
        /// (Not a ByteBuffer: its storage is rounded up to a power of two, which wastes up to
        /// half of a long-lived entry's memory.)
        var data: [UInt8]
        var keyLength: Int
        var hash: UInt64
        var meta: EntryMeta
        var charge: Int
        var freq: UInt8
        var place: Place
    }

    enum Place: UInt8, Sendable { case free, small, main, dead }

    public let capacity: Int
    /// Entries read at least this many times while in the small queue move to main.
    public let promotionThreshold: UInt8
    /// Ms an expired entry is kept for stale reads (`CACHE.GET ... STALE`) before it is
    /// reclaimed; 0: reclaimed as soon as it is seen expired. Expired entries still count
    /// against ``capacity`` and are evicted like any other.
    public var staleRetention: Int64 = 0

    var index: [UInt64: Int32] = [:]
    var slots: [Slot] = []
    var freeSlots: [Int32] = []
    var small = Deque<Int32>()
    var main = Deque<Int32>()
    var ghost = Deque<UInt64>()
    var ghostSet = Set<UInt64>()
    var smallBytes = 0
    /// Removed entries whose slot still sits in a queue.
    var deadInQueues = 0
    public private(set) var statistics = Statistics()

    public init(capacity: Int, promotionThreshold: UInt8 = 1) {
        self.capacity = capacity
        self.promotionThreshold = promotionThreshold
    }

    public static func charge(keyLength: Int, valueLength: Int) -> Int {
        keyLength + valueLength + entryOverhead
    }

    // MARK: Reads

    /// Looks a key up; a live entry counts as read. Expired entries are missed, and removed
    /// once past ``staleRetention``. A stale read passes `now` minus its window: an entry
    /// expired less than that long ago is found.
    public mutating func read(_ key: ByteBuffer, hash: UInt64, now: Int64) -> (value: CachedValue, meta: EntryMeta)? {
        guard let i = index[hash].map(Int.init) else { return nil }
        guard Self.keyMatches(slots[i], key) else { return nil }
        if slots[i].meta.isExpired(at: now) {
            if slots[i].meta.isExpired(at: now.subtractingSaturating(staleRetention)) { remove(slot: i) }
            return nil
        }
        if slots[i].freq < 3 { slots[i].freq &+= 1 }
        return (CachedValue(entry: slots[i].data, keyLength: slots[i].keyLength), slots[i].meta)
    }

    /// Metadata of a live entry without counting a read.
    public func peek(_ key: ByteBuffer, hash: UInt64, now: Int64) -> EntryMeta? {
        guard let i = index[hash].map(Int.init), Self.keyMatches(slots[i], key),
              !slots[i].meta.isExpired(at: now) else { return nil }
        return slots[i].meta
    }

    /// Every live entry's key and metadata (SCAN, KEYS and FLUSHDB without a file), in no order.
    public func forEachLive(now: Int64, _ body: (ArraySlice<UInt8>, EntryMeta) -> Void) {
        for i in index.values {
            let slot = slots[Int(i)]
            if !slot.meta.isExpired(at: now) { body(slot.data[..<slot.keyLength], slot.meta) }
        }
    }

    static func keyMatches(_ slot: Slot, _ key: ByteBuffer) -> Bool {
        guard slot.keyLength == key.readableBytes else { return false }
        return slot.data.withUnsafeBytes { stored in
            key.withUnsafeReadableBytes { probe in
                probe.count == 0 || memcmp(stored.baseAddress!, probe.baseAddress!, probe.count) == 0
            }
        }
    }

    // MARK: Writes

    /// Stores a value (replacing any entry with the same key). Returns false when the entry is
    /// larger than the whole cache and so was not kept.
    @discardableResult
    public mutating func write(_ key: ByteBuffer, hash: UInt64, value: ByteBuffer, meta: EntryMeta) -> Bool {
        write(entry: Self.entry(key: key, value: value), keyLength: key.readableBytes, hash: hash, meta: meta)
    }

    /// Key bytes followed by value bytes in an exact-size array, as the cache keeps them.
    public static func entry(key: ByteBuffer, value: ByteBuffer) -> [UInt8] {
        let n = key.readableBytes + value.readableBytes
        return [UInt8](unsafeUninitializedCapacity: n) { out, count in
            key.withUnsafeReadableBytes { k in
                value.withUnsafeReadableBytes { v in
                    let raw = UnsafeMutableRawBufferPointer(out)
                    if k.count > 0 { raw.baseAddress!.copyMemory(from: k.baseAddress!, byteCount: k.count) }
                    if v.count > 0 { (raw.baseAddress! + k.count).copyMemory(from: v.baseAddress!, byteCount: v.count) }
                }
            }
            count = n
        }
    }

    /// Stores `entry` = key bytes followed by value bytes, as built by ``entry(key:value:)``.
    @discardableResult
    public mutating func write(entry data: [UInt8], keyLength: Int, hash: UInt64, meta: EntryMeta) -> Bool {
        let charge = Self.charge(keyLength: keyLength, valueLength: data.count - keyLength)

        if let existing = index[hash].map(Int.init) {
            if charge > capacity {
                remove(slot: existing)
                return false
            }
            // Replace in place: the entry keeps its queue position and frequency.
            let delta = charge - slots[existing].charge
            slots[existing].data = data
            slots[existing].keyLength = keyLength
            slots[existing].meta = meta
            slots[existing].charge = charge
            statistics.bytes += delta
            if slots[existing].place == .small { smallBytes += delta }
            evict(toFit: 0, sparing: existing)
            return true
        }
        guard charge <= capacity else { return false }
        evict(toFit: charge, sparing: -1)

        let toMain = ghostSet.contains(hash)
        let slot = Slot(data: data, keyLength: keyLength, hash: hash, meta: meta,
                        charge: charge, freq: 0, place: toMain ? .main : .small)
        let i: Int32
        if let free = freeSlots.popLast() {
            i = free
            slots[Int(i)] = slot
        } else {
            i = Int32(slots.count)
            slots.append(slot)
        }
        index[hash] = i
        if toMain {
            main.append(i)
        } else {
            small.append(i)
            smallBytes += charge
        }
        statistics.entries += 1
        statistics.bytes += charge
        return true
    }

    /// Removes a key; true if a live entry was there.
    @discardableResult
    public mutating func remove(_ key: ByteBuffer, hash: UInt64, now: Int64) -> Bool {
        guard let i = index[hash].map(Int.init), Self.keyMatches(slots[i], key) else { return false }
        let wasLive = !slots[i].meta.isExpired(at: now)
        remove(slot: i)
        return wasLive
    }

    /// Removes whatever entry sits under this hash (used when the key's owner says it is gone).
    public mutating func remove(hash: UInt64) {
        if let i = index[hash] { remove(slot: Int(i)) }
    }

    public func contains(hash: UInt64) -> Bool { index[hash] != nil }

    /// Whether a live (unexpired at `now`) entry sits under this hash.
    public func containsLive(hash: UInt64, now: Int64) -> Bool {
        guard let i = index[hash] else { return false }
        return !slots[Int(i)].meta.isExpired(at: now)
    }

    mutating func remove(slot i: Int) {
        index[slots[i].hash] = nil
        statistics.entries -= 1
        statistics.bytes -= slots[i].charge
        if slots[i].place == .small { smallBytes -= slots[i].charge }
        // The slot stays queued as a tombstone until its queue reaches it.
        slots[i].place = .dead
        slots[i].data = []
        deadInQueues += 1
        if deadInQueues > 1024 && deadInQueues > statistics.entries {
            compactQueues()
        }
    }

    /// Drops expired entries among up to `budget` slots from `cursor`; returns the next cursor.
    public mutating func sweepExpired(now: Int64, from cursor: Int, budget: Int) -> (next: Int, removed: Int) {
        guard !slots.isEmpty else { return (0, 0) }
        var i = cursor < slots.count ? cursor : 0
        var removed = 0
        for _ in 0..<min(budget, slots.count) {
            if (slots[i].place == .small || slots[i].place == .main) && slots[i].meta.isExpired(at: now.subtractingSaturating(staleRetention)) {
                remove(slot: i)
                removed += 1
            }
            i += 1
            if i == slots.count { i = 0 }
        }
        return (i, removed)
    }

    /// Checks the books (tests): every byte and entry counted once, queues and index agree.
    public func invariantViolation() -> String? {
        var live = 0, bytes = 0, small = 0
        for (hash, i) in index {
            let slot = slots[Int(i)]
            guard slot.place == .small || slot.place == .main else { return "index points at a \(slot.place) slot" }
            guard slot.hash == hash else { return "index hash mismatch" }
            live += 1
            bytes += slot.charge
            if slot.place == .small { small += slot.charge }
        }
        if live != statistics.entries { return "entries \(statistics.entries) but \(live) indexed" }
        if bytes != statistics.bytes { return "bytes \(statistics.bytes) but \(bytes) counted" }
        if small != smallBytes { return "smallBytes \(smallBytes) but \(small) counted" }
        if bytes > capacity { return "over capacity: \(bytes) > \(capacity)" }
        let queued = self.small.filter { slots[Int($0)].place == .small }.count + main.filter { slots[Int($0)].place == .main }.count
        if queued != live { return "\(queued) queued live entries but \(live) live" }
        return nil
    }

    // MARK: Eviction

    /// Evicts until `incoming` more bytes fit, never the entry at `sparing` (the one being
    /// replaced). Every round frees an entry or moves one from small to main, so it ends.
    mutating func evict(toFit incoming: Int, sparing: Int) {
        while statistics.bytes + incoming > capacity && statistics.entries > 0 {
            if small.isEmpty && main.isEmpty { break }  // nothing left to evict (cannot happen if the books are right)
            if (smallBytes >= capacity / 10 && !small.isEmpty) || main.isEmpty {
                evictFromSmall(sparing: sparing)
            } else if !evictFromMain(sparing: sparing) {
                // Main holds only the entry being replaced: take from small, or stop (it alone fits).
                if small.isEmpty { break }
                evictFromSmall(sparing: sparing)
            }
        }
    }

    mutating func evictFromSmall(sparing: Int) {
        while let i32 = small.popFirst() {
            let i = Int(i32)
            switch slots[i].place {
            case .dead:
                release(slot: i)
                continue
            case .small:
                if slots[i].freq >= promotionThreshold || i == sparing {
                    slots[i].place = .main
                    slots[i].freq = 0
                    smallBytes -= slots[i].charge
                    main.append(i32)
                    return  // freed nothing; the caller loops
                }
                rememberInGhost(slots[i].hash)
                evictLive(slot: i)
                return
            default:
                continue
            }
        }
    }

    /// false: main held nothing to evict but the spared entry.
    @discardableResult
    mutating func evictFromMain(sparing: Int) -> Bool {
        while let i32 = main.popFirst() {
            let i = Int(i32)
            switch slots[i].place {
            case .dead:
                release(slot: i)
                continue
            case .main:
                if slots[i].freq > 0 || i == sparing {
                    if slots[i].freq > 0 { slots[i].freq -= 1 }
                    main.append(i32)
                    if i == sparing && main.count == 1 { return false }
                    continue
                }
                evictLive(slot: i)
                return true
            default:
                continue
            }
        }
        return false
    }

    mutating func evictLive(slot i: Int) {
        if slots[i].place == .small { smallBytes -= slots[i].charge }
        index[slots[i].hash] = nil
        statistics.entries -= 1
        statistics.bytes -= slots[i].charge
        statistics.evictions += 1
        release(slot: i)
    }

    mutating func release(slot i: Int) {
        if slots[i].place == .dead { deadInQueues -= 1 }
        slots[i].place = .free
        slots[i].data = []
        freeSlots.append(Int32(i))
    }

    mutating func rememberInGhost(_ hash: UInt64) {
        // The ghost remembers about as many keys as main holds.
        guard ghostSet.insert(hash).inserted else { return }
        ghost.append(hash)
        let limit = max(main.count, 64)
        while ghost.count > limit, let old = ghost.popFirst() {
            ghostSet.remove(old)
        }
    }

    mutating func compactQueues() {
        small = compacted(small)
        main = compacted(main)
    }

    mutating func compacted(_ queue: Deque<Int32>) -> Deque<Int32> {
        var kept = Deque<Int32>()
        kept.reserveCapacity(queue.count)
        for i in queue {
            if slots[Int(i)].place == .dead {
                release(slot: Int(i))
            } else {
                kept.append(i)
            }
        }
        return kept
    }
}
