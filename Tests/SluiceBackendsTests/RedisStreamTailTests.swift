import Testing
@testable import SluiceBackends

/// How many entries the stream tail asks one XREAD for: XREAD has no byte limit, so the count
/// follows the largest entry of the last read. (The tail itself, on real redis-servers: the
/// shared-mode e2e tests, the readiness one among them.)
@Suite("The stream tail's read count")
struct RedisStreamTailTests {
    @Test func aReadHoldsAboutItsBytesAndTheCountAtMostDoubles() {
        // Small entries: the count doubles from the first read's up to the most a read asks for.
        var count = RedisStreamTail.firstCount
        var counts: [Int] = []
        for _ in 0..<8 {
            count = RedisStreamTail.nextCount(after: count, largest: 200)
            counts.append(count)
        }
        #expect(counts == [32, 64, 128, 256, 512, 1_000, 1_000, 1_000])
        // 4 MiB answers: eight to a read of 32 MiB.
        #expect(RedisStreamTail.nextCount(after: 1_000, largest: 4 << 20) == 8)
        // Answers over the read's bytes: one at a time, however many came before.
        #expect(RedisStreamTail.nextCount(after: 1_000, largest: 64 << 20) == 1)
        // An empty read (no entry met) or a count of nothing stays in range.
        #expect(RedisStreamTail.nextCount(after: 0, largest: 0) == 2)
        #expect(RedisStreamTail.nextCount(after: 1, largest: Int.max) == 1)
        #expect(RedisStreamTail.nextCount(after: Int.max / 4, largest: 1) == RedisStreamTail.maxCount)
    }
}
