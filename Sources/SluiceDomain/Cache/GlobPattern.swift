/// A KEYS / SCAN MATCH pattern with Redis's glob rules: `*` any run of bytes, `?` one byte,
/// `[abc]`, `[^abc]`, `[a-z]` one byte of (or not of) a set, `\x` the byte x itself. Matching is
/// linear-time backtracking over `*` (no recursion), so a hostile pattern costs at most
/// pattern × key steps.
public struct GlobPattern: Sendable {
    enum Token: Sendable {
        case star
        case any
        case byte(UInt8)
        case set(ranges: [ClosedRange<UInt8>], negated: Bool)

        func matches(_ b: UInt8) -> Bool {
            switch self {
            case .star, .any: return true
            case .byte(let x): return x == b
            case .set(let ranges, let negated): return ranges.contains { $0.contains(b) } != negated
            }
        }
    }

    let tokens: [Token]
    /// "*": every key matches (no per-key work).
    public let matchesEverything: Bool

    public init<C: Collection>(_ pattern: C) where C.Element == UInt8 {
        let p = Array(pattern)
        var tokens: [Token] = []
        var i = 0
        while i < p.count {
            switch p[i] {
            case UInt8(ascii: "*"):
                if case .star? = tokens.last {} else { tokens.append(.star) }
                i += 1
            case UInt8(ascii: "?"):
                tokens.append(.any)
                i += 1
            case UInt8(ascii: "\\") where i + 1 < p.count:
                tokens.append(.byte(p[i + 1]))
                i += 2
            case UInt8(ascii: "["):
                i += 1
                var negated = false
                if i < p.count, p[i] == UInt8(ascii: "^") {
                    negated = true
                    i += 1
                }
                var ranges: [ClosedRange<UInt8>] = []
                // As Redis: the set runs to the next ']' or to the end of the pattern.
                while i < p.count, p[i] != UInt8(ascii: "]") {
                    if p[i] == UInt8(ascii: "\\"), i + 1 < p.count {
                        ranges.append(p[i + 1]...p[i + 1])
                        i += 2
                    } else if i + 2 < p.count, p[i + 1] == UInt8(ascii: "-") {
                        let a = p[i], b = p[i + 2]
                        ranges.append(min(a, b)...max(a, b))
                        i += 3
                    } else {
                        ranges.append(p[i]...p[i])
                        i += 1
                    }
                }
                i += 1  // the ']'
                tokens.append(.set(ranges: ranges, negated: negated))
            default:
                tokens.append(.byte(p[i]))
                i += 1
            }
        }
        self.tokens = tokens
        if tokens.count == 1, case .star = tokens[0] { matchesEverything = true } else { matchesEverything = false }
    }

    public func matches<C: Collection>(_ key: C) -> Bool where C.Element == UInt8, C.Index == Int {
        if matchesEverything { return true }
        var t = 0, k = key.startIndex
        var starToken = -1, starKey = key.startIndex
        while k < key.endIndex {
            if t < tokens.count {
                if case .star = tokens[t] {
                    starToken = t
                    starKey = k
                    t += 1
                    continue
                }
                if tokens[t].matches(key[k]) {
                    t += 1
                    k += 1
                    continue
                }
            }
            // Mismatch: let the last star take one more byte, or fail.
            guard starToken >= 0 else { return false }
            t = starToken + 1
            starKey += 1
            k = starKey
        }
        while t < tokens.count, case .star = tokens[t] { t += 1 }
        return t == tokens.count
    }
}
