import NIOCore

/// Splits an inline request line into arguments with Redis's rules (`sdssplitargs`):
/// spaces separate; "double quotes" understand \n \r \t \b \a \\ \" and \xHH;
/// 'single quotes' understand only \'; a closing quote must be followed by a space or the end.
enum InlineSplitter {
    static func split(_ line: ByteBufferView) -> Result<[ByteBuffer], RESPRejection> {
        var args: [ByteBuffer] = []
        var i = line.startIndex
        let end = line.endIndex
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d || b == 0x0b || b == 0x0c }
        while true {
            while i < end && isSpace(line[i]) { i += 1 }
            if i == end { return .success(args) }
            var current = ByteBuffer()
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                if inDouble {
                    guard i < end else { return .failure(RESPRejection("unbalanced quotes in request")) }
                    let c = line[i]
                    if c == UInt8(ascii: "\\") && i + 3 < end && line[i + 1] == UInt8(ascii: "x"),
                       let hi = hexValue(line[i + 2]), let lo = hexValue(line[i + 3]) {
                        current.writeInteger(hi << 4 | lo)
                        i += 3
                    } else if c == UInt8(ascii: "\\") && i + 1 < end {
                        i += 1
                        let e = line[i]
                        switch e {
                        case UInt8(ascii: "n"): current.writeInteger(UInt8(ascii: "\n"))
                        case UInt8(ascii: "r"): current.writeInteger(UInt8(ascii: "\r"))
                        case UInt8(ascii: "t"): current.writeInteger(UInt8(ascii: "\t"))
                        case UInt8(ascii: "b"): current.writeInteger(UInt8(0x08))
                        case UInt8(ascii: "a"): current.writeInteger(UInt8(0x07))
                        default: current.writeInteger(e)
                        }
                    } else if c == UInt8(ascii: "\"") {
                        // The closing quote must be followed by a space or the end.
                        if i + 1 < end && !isSpace(line[i + 1]) {
                            return .failure(RESPRejection("unbalanced quotes in request"))
                        }
                        done = true
                    } else {
                        current.writeInteger(c)
                    }
                } else if inSingle {
                    guard i < end else { return .failure(RESPRejection("unbalanced quotes in request")) }
                    let c = line[i]
                    if c == UInt8(ascii: "\\") && i + 1 < end && line[i + 1] == UInt8(ascii: "'") {
                        i += 1
                        current.writeInteger(UInt8(ascii: "'"))
                    } else if c == UInt8(ascii: "'") {
                        if i + 1 < end && !isSpace(line[i + 1]) {
                            return .failure(RESPRejection("unbalanced quotes in request"))
                        }
                        done = true
                    } else {
                        current.writeInteger(c)
                    }
                } else {
                    if i == end { done = true; break }
                    let c = line[i]
                    switch c {
                    case _ where isSpace(c): done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default: current.writeInteger(c)
                    }
                }
                if i < end { i += 1 }
            }
            args.append(current)
        }
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
