import Foundation
import Testing
@testable import SluiceDomain

/// Calendar windows in UTC at their edges, checked against Foundation's Gregorian calendar;
/// money in exact micro-units.
@Suite struct BudgetPeriodTests {
    static func ms(_ text: String) -> Int64 {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Int64((f.date(from: text)!.timeIntervalSince1970 * 1000).rounded())
    }

    @Test func daysWeeksAndMonthsEndAtTheirUTCBoundaries() {
        // A leap day, a Sunday night, the last millisecond of a year.
        #expect(BudgetPeriod.day.end(after: Self.ms("2028-02-29T23:59:59.999Z")) == Self.ms("2028-03-01T00:00:00.000Z"))
        #expect(BudgetPeriod.day.end(after: Self.ms("2026-11-26T00:00:00.000Z")) == Self.ms("2026-11-27T00:00:00.000Z"))
        #expect(BudgetPeriod.week.end(after: Self.ms("2026-11-29T23:59:59.999Z")) == Self.ms("2026-11-30T00:00:00.000Z"))  // Sunday → Monday
        #expect(BudgetPeriod.week.end(after: Self.ms("2026-11-30T00:00:00.000Z")) == Self.ms("2026-12-07T00:00:00.000Z"))  // Monday starts one
        #expect(BudgetPeriod.month.end(after: Self.ms("2026-12-31T23:59:59.999Z")) == Self.ms("2027-01-01T00:00:00.000Z"))
        #expect(BudgetPeriod.month.end(after: Self.ms("2028-02-01T00:00:00.000Z")) == Self.ms("2028-03-01T00:00:00.000Z"))
        #expect(BudgetPeriod.rolling(milliseconds: 5_000).end(after: 1_000) == 6_000)
        #expect(BudgetPeriod.rolling(milliseconds: .max).end(after: 1_000) == .max)  // saturates
    }

    /// Every day for 60 years either side of 1970: the month and week ends agree with Foundation.
    @Test func calendarArithmeticAgreesWithFoundation() {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        for day in stride(from: Int64(-21_915), through: 21_915, by: 13) {
            let now = day * 86_400_000 + 43_210_987
            let date = Date(timeIntervalSince1970: Double(now) / 1000)
            let month = calendar.dateInterval(of: .month, for: date)!.end
            let week = calendar.dateInterval(of: .weekOfYear, for: date)!.end
            #expect(BudgetPeriod.month.end(after: now) == Int64(month.timeIntervalSince1970 * 1000), "day \(day)")
            #expect(BudgetPeriod.week.end(after: now) == Int64(week.timeIntervalSince1970 * 1000), "day \(day)")
        }
    }

    @Test func moneyIsExactInMicroUnits() {
        #expect(Money("0.1")!.micros == 100_000)
        #expect(Money("0.1")! + Money("0.2")! == Money("0.3")!)  // no float drift
        #expect(Money("12")!.description == "12")
        #expect(Money("7.500")!.description == "7.5")
        #expect(Money("0.000001")!.description == "0.000001")
        #expect(Money("1e3")!.micros == 1_000_000_000)
        #expect(Money("0.0000004")!.micros == 0 && Money("0.0000006")!.micros == 1)  // rounded past six places
        #expect(Money("1000000000000")! == Money.max)
        for bad in ["", "-1", "abc", "1.2.3", "1000000000000.000001", "1e13", "nan", "inf", " 1", "+5", "0x10", "-0", "9999999999999", "10000000000000", "99999999999999.5",
                    "1000000000001", String(repeating: "9", count: 40)] {
            #expect(Money(Substring(bad)) == nil, "\(bad)")
        }
    }
}
