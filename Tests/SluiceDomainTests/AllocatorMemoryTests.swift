import Foundation
import SluiceDomain
import Testing

/// The real allocator (glibc; elsewhere there is nothing to test), no stand-in: memory freed
/// between live blocks stays resident until it is released.
@Suite("Allocator memory")
struct AllocatorMemoryTests {
    /// Resident bytes of this process (/proc/self/statm).
    static func resident() -> Int {
        let fields = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8))?.split(separator: " ") ?? []
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    #if canImport(Glibc)
    /// Whether a sanitizer's runtime is loaded (scripts/sanitizers.sh): it replaces glibc's
    /// allocator, which then reports no free memory however much is freed. (Asked of the
    /// runtime itself, not of the allocator's figures: a broken figure must fail the test.)
    static let sanitized = ["__tsan_init", "__asan_init", "__msan_init"].contains { (name: String) in
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) != nil
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/self/statm")),
          .disabled(if: sanitized, "a sanitizer's allocator stands in for glibc's"))
    func memoryFreedBetweenLiveBlocksIsGivenBackWhenReleased() {
        // 2,048 blocks of 64 KiB (under glibc's mmap threshold: they come from an arena),
        // touched so that they are resident; every other one freed, so nothing coalesces into
        // a top chunk glibc would trim by itself.
        let size = 64 << 10, count = 2048
        let blocks = (0..<count).map { _ in
            let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            p.initializeMemory(as: UInt8.self, repeating: 1, count: size)
            return p
        }
        for i in stride(from: 0, to: count, by: 2) { blocks[i].deallocate() }
        let freedBytes = size * count / 2
        #expect(AllocatorMemory.freeBytes >= freedBytes)
        let before = Self.resident()
        #expect(AllocatorMemory.releaseFree())
        let after = Self.resident()
        // Other tests run meanwhile and allocate too: half of what was freed is margin enough.
        #expect(before - after >= freedBytes / 2, "resident \(before) → \(after), freed \(freedBytes)")
        for i in stride(from: 1, to: count, by: 2) { blocks[i].deallocate() }
    }
    #endif
}
