import ArgumentParser
import Foundation
import NIOCore
import SluiceDomain

/// Measures what one L1 entry really costs on the heap, to check the overhead constant
/// `S3FIFOCache.entryOverhead` that the byte budget charges for every entry.
struct Memory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Heap bytes per L1 entry (and per directory entry) against what the L1 charges."
    )

    @Option(help: "Entries to insert.") var entries = 1_000_000
    @Option(help: "Key length in bytes.") var keySize = 16
    @Option(help: "Value length in bytes.") var valueSize = 100

    func run() {
        let hasher = KeyHasher(seed: 7)
        let value = ByteBuffer(repeating: 0x76, count: valueSize)
        let keys: [ByteBuffer] = (0..<entries).map { i in
            var b = ByteBuffer()
            b.writeString(String(i).padding(toLength: keySize, withPad: "k", startingAt: 0))
            return b
        }
        let hashes = keys.map { hasher.hash($0) }

        // Directory first: memory freed by setting up would otherwise hide its growth.
        let before = heapInUse()
        var shard = CacheShard(l1Capacity: 0, tracksL2: true)
        for i in 0..<entries {
            shard.restore(hash: hashes[i], expiresAt: 0)
        }
        let afterDirectory = heapInUse()
        var cache = S3FIFOCache(capacity: Int.max / 2)
        for i in 0..<entries {
            cache.write(keys[i], hash: hashes[i], value: value, meta: EntryMeta(createdAt: 0))
        }
        let afterL1 = heapInUse()

        let perEntry = Double(afterL1 - afterDirectory) / Double(entries)
        let overhead = perEntry - Double(keySize + valueSize)
        let perDirectory = Double(afterDirectory - before) / Double(entries)
        print("entries: \(entries), key \(keySize) B, value \(valueSize) B")
        print(String(format: "L1 heap per entry:        %7.1f B  (key + value %d B, overhead %.1f B)", perEntry, keySize + valueSize, overhead))
        print("L1 charges per entry:     \(S3FIFOCache.charge(keyLength: keySize, valueLength: valueSize)) B  (overhead constant \(S3FIFOCache.entryOverhead) B)")
        print(String(format: "directory heap per key:   %7.1f B  (not part of the L1 budget)", perDirectory))
        withExtendedLifetime((cache, shard)) {}
    }

    /// Resident bytes of this process (/proc/self/statm), the memory the entries really take.
    func heapInUse() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
