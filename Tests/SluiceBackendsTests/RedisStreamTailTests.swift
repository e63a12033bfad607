import Testing
@testable import SluiceBackends

/// How many entries the stream tail asks one XREAD for: XREAD has no byte limit, so the count
/// follows the entries' size. (The tail itself, on real redis-servers: the shared-mode e2e tests.)
@Suite("The stream tail's read count")
struct RedisStreamTailTests {
    @Test func aReadHoldsAboutItsBytesWhateverTheEntriesSize() {
        // Small at first: nothing is known of the entries yet.
        #expect(RedisStreamTail.nextCount(entries: 0, bytes: 0) == 16)
        // Small entries: the most a read asks for.
        #expect(RedisStreamTail.nextCount(entries: 1_000, bytes: 200_000) == RedisStreamTail.maxCount)
        // 4 MiB answers: eight to a read of 32 MiB.
        #expect(RedisStreamTail.nextCount(entries: 16, bytes: 16 << 22) == 8)
        // Answers over the read's bytes: one at a time.
        #expect(RedisStreamTail.nextCount(entries: 2, bytes: 2 * (64 << 20)) == 1)
        // Sizes that would overflow a naive product stay in range.
        #expect(RedisStreamTail.nextCount(entries: 1, bytes: Int.max) == 1)
    }
}
