/// An amount of money (or any budgeted unit) in integer micro-units (10⁻⁶), so that a running
/// total never drifts as doubles do (0.1 + 0.2 ≠ 0.3). At most ``max`` (10¹² whole units): the
/// sum of two stays far inside `Int64`.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var micros: Int64

    public static let perUnit: Int64 = 1_000_000
    /// 10¹² units: 10¹⁸ micro-units.
    public static let max = Money(micros: 1_000_000_000_000 * perUnit)
    public static let zero = Money(micros: 0)

    public init(micros: Int64) { self.micros = micros }

    /// Parses a non-negative decimal (`2.5`, `0.000001`, `12`, `1e3`): exactly when written with
    /// at most six decimals, else rounded to the nearest micro-unit. nil: not a number, negative,
    /// or above ``max``.
    public init?(_ text: Substring) {
        var whole: Int64 = 0, fraction: Int64 = 0, places = 0, seenDot = false, digits = 0
        var plain = !text.isEmpty
        for c in text.utf8 {
            if c == UInt8(ascii: ".") && !seenDot {
                seenDot = true
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                digits += 1
                if !seenDot {
                    // Bounded before each step: at most 10¹³ here, far inside Int64.
                    guard whole <= Self.max.micros / Self.perUnit else { return nil }
                    whole = whole * 10 + Int64(c - UInt8(ascii: "0"))
                } else if places < 6 {
                    fraction = fraction * 10 + Int64(c - UInt8(ascii: "0"))
                    places += 1
                } else {
                    plain = false
                }
            } else {
                plain = false
                break
            }
        }
        if plain && digits > 0 {
            for _ in places..<6 { fraction *= 10 }
            guard whole <= Self.max.micros / Self.perUnit else { return nil }
            let micros = whole * Self.perUnit + fraction
            guard micros <= Self.max.micros else { return nil }
            self.micros = micros
            return
        }
        // Exponents, or more than six decimals: through a double, rounded — decimal digits only
        // (Double would also read "+5", "0x10" and "nan").
        guard let first = text.utf8.first, (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) || first == UInt8(ascii: "."),
              text.utf8.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".")
                  || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }),
              let d = Double(text), d.isFinite, d >= 0, d <= Double(Self.max.micros) / Double(Self.perUnit) else { return nil }
        self.micros = Int64((d * Double(Self.perUnit)).rounded())
    }

    public static func < (a: Money, b: Money) -> Bool { a.micros < b.micros }
    public static func + (a: Money, b: Money) -> Money { Money(micros: a.micros.addingSaturating(b.micros)) }
    public static func - (a: Money, b: Money) -> Money { Money(micros: a.micros.subtractingSaturating(b.micros)) }

    /// The shortest exact decimal: `7.5`, `0.000001`, `12`.
    public var description: String {
        let whole = micros / Self.perUnit, fraction = micros % Self.perUnit
        guard fraction != 0 else { return String(whole) }
        var f = String(fraction)
        f = String(repeating: "0", count: 6 - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(whole).\(f)"
    }

    public var units: Double { Double(micros) / Double(Self.perUnit) }
}
