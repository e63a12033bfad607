/// The lines of `lexicon.txt` and the space-separated fields of each, as ranges of offsets into
/// its bytes: the lexicon is parsed at every start, and `String.split` over its 3.5 MB cost
/// most of a second (plain offsets also keep a debug build's start quick).
struct LexiconLines {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func next() -> Line? {
        guard offset < bytes.count else { return nil }
        var end = offset
        while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
        defer { offset = end + 1 }
        return Line(bytes: bytes, start: offset, end: end)
    }

    /// One line; `field()` takes the next field off its front.
    struct Line {
        let bytes: UnsafeBufferPointer<UInt8>
        let start: Int
        var position: Int
        let end: Int

        init(bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) {
            self.bytes = bytes
            self.start = start
            self.position = start
            self.end = end
        }

        var text: String { string(start..<end) }

        /// Nothing but spaces left.
        var isEmpty: Bool {
            var i = position
            while i < end && bytes[i] == UInt8(ascii: " ") { i += 1 }
            return i == end
        }

        /// The next field; runs of spaces separate fields as one space does.
        mutating func field() -> Range<Int>? {
            while position < end && bytes[position] == UInt8(ascii: " ") { position += 1 }
            guard position < end else { return nil }
            let first = position
            while position < end && bytes[position] != UInt8(ascii: " ") { position += 1 }
            return first..<position
        }

        func string(_ range: Range<Int>) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }

        /// The comma-separated non-negative decimals in `range`; `invalid` for one that is not.
        func integers(_ range: Range<Int>, invalid: Int32?) -> [Int32] {
            var out: [Int32] = []
            var value: Int32 = 0, digits = 0, valid = true
            var i = range.lowerBound
            while true {
                if i == range.upperBound || bytes[i] == UInt8(ascii: ",") {
                    if valid && digits > 0 {
                        out.append(value)
                    } else if let invalid {
                        out.append(invalid)
                    }
                    if i == range.upperBound { return out }
                    value = 0
                    digits = 0
                    valid = true
                } else if bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") && digits < 9 {
                    value = value &* 10 &+ Int32(bytes[i] &- UInt8(ascii: "0"))
                    digits += 1
                } else {
                    valid = false
                }
                i += 1
            }
        }
    }
}
