import Testing
@testable import SluiceLoad

@Suite struct LoadComparisonTests {
    @Test func ratiosArePairedByRoundSoDriftCancels() {
        // The machine runs twice as fast in round 2; the second command is 0.9 of the first in
        // every round. Unpaired medians would say 0.9 only by luck; paired ratios say it always.
        let c = LoadComparison(commands: ["cache.get", "llm.get"], rounds: [[100, 90], [200, 180], [110, 99]])
        #expect(c.rows.count == 2)
        #expect(c.rows[0].medianRatio == 1 && c.rows[0].minRatio == 1 && c.rows[0].maxRatio == 1)
        #expect(abs(c.rows[1].medianRatio - 0.9) < 1e-12)
        #expect(abs(c.rows[1].minRatio - 0.9) < 1e-12 && abs(c.rows[1].maxRatio - 0.9) < 1e-12)
        #expect(c.rows[1].medianOpsPerSecond == 99 && c.rows[1].minOpsPerSecond == 90 && c.rows[1].maxOpsPerSecond == 180)
        #expect(c.rows[1].rounds == 3)
    }

    @Test func spreadAndEvenCounts() {
        let c = LoadComparison(commands: ["a", "b"], rounds: [[100, 105], [100, 95], [100, 101], [100, 99]])
        #expect(abs(c.rows[1].medianRatio - 1.0) < 1e-12)  // (0.99 + 1.01) / 2
        #expect(abs(c.rows[1].minRatio - 0.95) < 1e-12 && abs(c.rows[1].maxRatio - 1.05) < 1e-12)
        #expect(c.rows[0].medianOpsPerSecond == 100)
    }

    @Test func aRoundWithNothingToCompareWithIsLeftOutOfTheRatios() {
        let c = LoadComparison(commands: ["a", "b"], rounds: [[0, 50], [100, 80]])
        #expect(c.rows[1].medianRatio == 0.8 && c.rows[1].minRatio == 0.8)
        #expect(c.rows[1].medianOpsPerSecond == 65)
    }

    @Test func tableNamesTheBaseline() {
        let table = LoadComparison(commands: ["cache.get", "llm.get"], rounds: [[1000, 950]]).table
        #expect(table.contains("vs cache.get (median)"))
        #expect(table.contains("0.950"))
        #expect(table.split(separator: "\n").count == 5)
    }
}
