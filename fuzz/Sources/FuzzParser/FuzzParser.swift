import NIOCore
import SluiceProtocol

/// The request parser on arbitrary bytes. The first byte picks how the input is cut into reads
/// (the parser must give the same requests however the bytes arrive) and which limits apply
/// (the configured ones, small ones, or the fatal ones before AUTH). Checked: no crash, no
/// unbounded wait, and the same requests whole or in pieces.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParser(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard count > 1 else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let mode = bytes[0]
    let wire = bytes.dropFirst()
    let limits: RESPLimits
    switch mode % 3 {
    case 0: limits = RESPLimits()
    case 1: limits = RESPLimits(maxInlineLength: 32, maxBulkLength: 16, maxArguments: 4, maxRequestBytes: 64)
    default: limits = .beforeAuth
    }
    let whole = parse(Array(wire), chunk: wire.count, limits: limits)
    let pieces = parse(Array(wire), chunk: Int(mode >> 2) % 7 + 1, limits: limits)
    // A rejection may cut the stream at a different place when it is discarded piecewise, but
    // everything before the first rejection or error must be the same.
    let agreed = zip(whole, pieces).prefix { $0.0 == $0.1 }.count
    let firstDifference = min(whole.count, pieces.count)
    if agreed < firstDifference, !whole[..<agreed].contains(where: { $0.hasPrefix("rejected") || $0.hasPrefix("error") }) {
        let a = whole[agreed], b = pieces[agreed]
        if !(a.hasPrefix("rejected") || a.hasPrefix("error") || b.hasPrefix("rejected") || b.hasPrefix("error")) {
            fatalError("parser disagrees with itself: \(a) vs \(b)")
        }
    }
    // No unbounded wait: with nothing rejected, the pieces give every request the whole gives
    // (a parser that waited for bytes it already had would fall short here).
    let clean = { (r: [String]) in !r.contains(where: { $0.hasPrefix("rejected") || $0.hasPrefix("error") }) }
    if clean(whole) && clean(pieces) && whole.count != pieces.count {
        fatalError("whole input gave \(whole.count) requests, the same bytes in pieces \(pieces.count)")
    }
    // The client side's reply parser must not crash either.
    var replies = ByteBuffer(bytes: wire)
    for _ in 0..<64 {
        guard let value = try? RESPValue(consuming: &replies) else { break }
        _ = value
    }
    return 0
}

func parse(_ wire: [UInt8], chunk: Int, limits: RESPLimits) -> [String] {
    var parser = RESPRequestParser(limits: limits)
    var buffer = ByteBuffer()
    var out: [String] = []
    var offset = 0
    while offset < wire.count {
        let n = min(chunk, wire.count - offset)
        buffer.writeBytes(wire[offset..<offset + n])
        offset += n
        do {
            while let request = try parser.next(from: &buffer) {
                switch request {
                case .command(let c): out.append("command " + c.arguments.map { String(decoding: $0.readableBytesView, as: UTF8.self) }.joined(separator: "\u{1}"))
                case .rejected(let r): out.append("rejected " + r.message)
                }
                if out.count > 100_000 { fatalError("more requests than bytes") }
            }
        } catch {
            out.append("error \(error.message)")
            return out
        }
    }
    return out
}
