import Testing
@testable import SluiceServer

/// The process-wide bound on replies held for clients: what is counted, and who is told to go.
@Suite("Client output memory")
struct ClientOutputMemoryTests {
    let mb = 1 << 20

    @Test func onlyWhatLiesAboveTheFloorCountsAndReportsMoveTheTotal() {
        let memory = ClientOutputMemory(limit: 100 * mb)
        var a = 0, b = 0
        #expect(!memory.report(&a, holding: ClientOutputMemory.floor))
        #expect(a == 0 && memory.counted == 0)
        #expect(!memory.report(&a, holding: ClientOutputMemory.floor + 10 * mb))
        #expect(!memory.report(&b, holding: ClientOutputMemory.floor + 5 * mb))
        #expect(memory.counted == 15 * mb && memory.holders.load(ordering: .relaxed) == 2)
        // Drained, then closed: back to nothing, holders too.
        #expect(!memory.report(&a, holding: 1000))
        #expect(!memory.report(&b, holding: 0))
        #expect(a == 0 && b == 0 && memory.counted == 0 && memory.holders.load(ordering: .relaxed) == 0)
    }

    @Test func overTheLimitTheLargestHoldersGoAndSmallOnesStay() {
        let memory = ClientOutputMemory(limit: 20 * mb)
        let floor = ClientOutputMemory.floor
        var reader = 0
        #expect(!memory.report(&reader, holding: floor + mb))  // a client reading its replies
        var flood = [Int](repeating: 0, count: 8)
        var told = 0
        for i in flood.indices where memory.report(&flood[i], holding: floor + 3 * mb) { told += 1 }
        // 1 + 3 × 8 = 25 MB: the limit is passed at the seventh 3 MB holder; from then on each
        // flood connection (3 MB, above the mean) is told to go, the reader (1 MB) is not.
        #expect(told == 2)
        #expect(!memory.report(&reader, holding: floor + mb))
        #expect(memory.report(&flood[0], holding: floor + 3 * mb))
        // Those told to go close: the total falls back under the limit and nobody else is told.
        for i in flood.indices { _ = memory.report(&flood[i], holding: 0) }
        #expect(memory.counted == mb)
        #expect(!memory.report(&reader, holding: floor + 2 * mb))
    }

    /// A connection that has not held anything for a second yet (a client reading a large
    /// reply) is never told to go, however large; once it has, it is.
    @Test func onlyLastingHoldersGo() {
        let memory = ClientOutputMemory(limit: 10 * mb)
        let floor = ClientOutputMemory.floor
        var reader = 0
        #expect(!memory.report(&reader, holding: floor + 30 * mb, mayGo: false))
        #expect(memory.counted == 30 * mb)
        #expect(memory.report(&reader, holding: floor + 30 * mb, mayGo: true))
    }

    @Test func oneHugeHolderGoesAlone() {
        let memory = ClientOutputMemory(limit: 10 * mb)
        let floor = ClientOutputMemory.floor
        var small = [Int](repeating: 0, count: 4), huge = 0
        for i in small.indices { #expect(!memory.report(&small[i], holding: floor + mb)) }
        #expect(memory.report(&huge, holding: floor + 30 * mb))
        // Over the limit now, but a small holder is under the mean (34 / 5): it stays.
        #expect(!memory.report(&small[0], holding: floor + mb))
    }
}
