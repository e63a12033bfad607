#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Numbers in stored values and arguments, parsed and printed as Redis does, so INCR, INCRBYFLOAT
/// and their errors answer exactly what redis-server answers for the same bytes.
public enum RedisNumbers {
    /// Redis's `string2ll`: an optional '-', then digits with no leading zero (except "0"
    /// itself), no spaces, no '+', within Int64. nil for anything else.
    public static func integer<C: Collection>(_ bytes: C) -> Int64? where C.Element == UInt8 {
        let n = bytes.count
        guard n > 0, n <= 20 else { return nil }
        var i = bytes.startIndex
        if n == 1, bytes[i] == UInt8(ascii: "0") { return 0 }
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i = bytes.index(after: i)
            guard i != bytes.endIndex else { return nil }
        }
        guard bytes[i] >= UInt8(ascii: "1"), bytes[i] <= UInt8(ascii: "9") else { return nil }
        // Accumulated as a negative number, which reaches Int64.min without overflowing.
        var value: Int64 = 0
        while i != bytes.endIndex {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            value = s
            i = bytes.index(after: i)
        }
        if negative { return value }
        return value == .min ? nil : -value
    }

    #if arch(x86_64) || arch(i386)
    /// Redis keeps INCRBYFLOAT's arithmetic in C's `long double`, which on x86 is Float80.
    public typealias LongDouble = Float80
    #else
    /// Elsewhere Swift has no type for C's `long double`; Double may print a last digit
    /// differently from redis-server on these machines (documented).
    public typealias LongDouble = Double
    #endif

    /// Redis's `string2ld`: what `strtold` reads of all the bytes, not starting with a space, not
    /// NaN, not out of range (overflow or underflow to zero); under 5,120 bytes
    /// (MAX_LONG_DOUBLE_CHARS). nil for anything else.
    public static func longDouble<C: Collection>(_ bytes: C) -> LongDouble? where C.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count < 5120, let first = bytes.first,
              !(first == 0x20 || (first >= 0x09 && first <= 0x0D)), !bytes.contains(0) else { return nil }
        var text = Array(bytes)
        text.append(0)
        return text.withUnsafeBufferPointer { p -> LongDouble? in
            let start = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            errno = 0
            #if arch(x86_64) || arch(i386)
            let value = strtold(start, &end)
            #else
            let value = strtod(start, &end)
            #endif
            guard let end, end - UnsafeMutablePointer(mutating: start) == bytes.count, !value.isNaN else { return nil }
            // As Redis: a range error is refused when it overflowed or underflowed to zero
            // ("1e5000", "1e-5000"); a denormal result stands.
            if errno == ERANGE, value.isInfinite || value == 0 { return nil }
            return value
        }
    }

    /// Redis's `ld2string(..., LD_STR_HUMAN)`: "%.17Lf" with the trailing zeros (and a bare
    /// point) removed, so 10.5 + 0.1 prints "10.6".
    public static func humanString(_ value: LongDouble) -> String {
        var buffer = [CChar](repeating: 0, count: 5200)
        let count = buffer.withUnsafeMutableBufferPointer { b -> Int in
            #if arch(x86_64) || arch(i386)
            return Int(withVaList([value]) { vsnprintf(b.baseAddress!, b.count, "%.17Lf", $0) })
            #else
            return Int(withVaList([value]) { vsnprintf(b.baseAddress!, b.count, "%.17f", $0) })
            #endif
        }
        var bytes = buffer.prefix(max(0, min(count, buffer.count - 1))).map { UInt8(bitPattern: $0) }
        if bytes.contains(UInt8(ascii: ".")) {
            while bytes.last == UInt8(ascii: "0") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        }
        // "-0" becomes "0", as Redis prints it.
        if bytes == Array("-0".utf8) { return "0" }
        return String(decoding: bytes, as: UTF8.self)
    }
}
