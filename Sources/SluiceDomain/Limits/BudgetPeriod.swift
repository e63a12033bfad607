/// The window of a spend budget (`RL.SPEND ... PERIOD`): a calendar period in UTC — it resets at
/// midnight, on Monday, on the first of the month, whenever the first spend came — or a rolling
/// window of a fixed length that starts with the first spend.
public enum BudgetPeriod: Sendable, Hashable, CustomStringConvertible {
    case day, week, month
    case rolling(milliseconds: Int64)

    static let dayMilliseconds: Int64 = 86_400_000

    /// When the window that holds `now` (wall-clock ms since the Unix epoch) ends; a rolling
    /// window begun at `now` ends its length later.
    public func end(after now: Int64) -> Int64 {
        let days = Self.floorDiv(now, Self.dayMilliseconds)
        switch self {
        case .day:
            return (days + 1) * Self.dayMilliseconds
        case .week:
            // 1970-01-01 was a Thursday: ISO weeks start on Monday, 3 days before day 0 + 7k.
            let sinceMonday = Self.floorMod(days + 3, 7)
            return (days - sinceMonday + 7) * Self.dayMilliseconds
        case .month:
            let (y, m, _) = Self.civil(fromDays: days)
            let (ny, nm) = m == 12 ? (y + 1, 1) : (y, m + 1)
            return Self.days(year: ny, month: nm, day: 1) * Self.dayMilliseconds
        case .rolling(let ms):
            return now.addingSaturating(ms)
        }
    }

    /// From ``description``: `day`, `week`, `month` or a length in ms.
    public init?(_ text: String) {
        switch text {
        case "day": self = .day
        case "week": self = .week
        case "month": self = .month
        default:
            guard let ms = Int64(text), ms >= 1 else { return nil }
            self = .rolling(milliseconds: ms)
        }
    }

    /// The name a client uses (`day`, `week`, `month`) or the window's length in ms.
    public var description: String {
        switch self {
        case .day: return "day"
        case .week: return "week"
        case .month: return "month"
        case .rolling(let ms): return "\(ms)"
        }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

    /// Year, month (1–12), day of the proleptic Gregorian date `days` after 1970-01-01
    /// (H. Hinnant's civil_from_days).
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days from 1970-01-01 to the date (days_from_civil).
    static func days(year y0: Int64, month m: Int64, day d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
