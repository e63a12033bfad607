import NIOCore
import SluiceDomain

extension ByteBuffer {
    /// Case-insensitive comparison with an ASCII keyword, without building a String.
    @inlinable
    public func isKeyword(_ keyword: StaticString) -> Bool {
        guard readableBytes == keyword.utf8CodeUnitCount else { return false }
        return withUnsafeReadableBytes { bytes in
            let k = keyword.utf8Start
            for i in 0..<bytes.count where bytes[i] | 0x20 != k[i] | 0x20 {
                return false
            }
            return true
        }
    }

    /// A base-10 integer in Redis's strict form (optional '-', digits, no spaces), or nil.
    @inlinable
    public var decimalValue: Int? {
        withUnsafeReadableBytes { bytes -> Int? in
            guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
            var i = 0
            var negative = false
            if bytes[0] == UInt8(ascii: "-") {
                negative = true
                i = 1
                guard bytes.count > 1 else { return nil }
            }
            var value = 0
            while i < bytes.count {
                let d = bytes[i] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(Int(d)) : m.addingReportingOverflow(Int(d))
                guard !o1, !o2 else { return nil }
                value = a
                i += 1
            }
            return value
        }
    }

    /// A finite decimal number, or nil: digits, one optional leading minus, a point, an
    /// exponent — not hex (`0x10`), not a leading `+`, not `inf`/`nan` (Swift's Double(String)
    /// takes all of those).
    public var doubleValue: Double? {
        guard readableBytes > 0, readableBytes < 64,
              readableBytesView.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x65 || $0 == 0x45 }),
              let s = getString(at: readerIndex, length: readableBytes), let d = Double(s), d.isFinite else { return nil }
        return d
    }

    /// UTF-8 text of the readable bytes, for messages (invalid bytes replaced).
    public var text: String { String(decoding: readableBytesView, as: UTF8.self) }

    /// The readable bytes as text, or nil when they are not valid UTF-8. Names and prompts
    /// compared as text must not be repaired: "\xff" and "\xfe" would both read U+FFFD, two
    /// namespaces one, two prompts one.
    public var validText: String? {
        if readableBytesView.allSatisfy({ $0 < 0x80 }) { return text }
        return String(validating: readableBytesView, as: UTF8.self)
    }
}

extension ByteBuffer {
    /// An integer as redis-server reads one (`string2ll`: no leading zeros, no '+'), or nil.
    public var redisInteger: Int64? { RedisNumbers.integer(readableBytesView) }
}
