import NIOCore
import SluiceBackends
import SluiceDomain
import SluiceProtocol

/// What a command handler gets: its arguments (after the verb), the time the read batch
/// started, the connection's event loop and session.
public struct CommandContext {
    public var arguments: RESPCommand.Arguments
    /// Arguments after the verb.
    public let argumentCount: Int
    /// When the read batch started, on both clocks.
    public let time: Timestamp
    // The connection handler owns these and outlives every synchronous command call, so the
    // context borrows them without reference counting (they are on the per-request path).
    public unowned(unsafe) let eventLoop: any EventLoop
    public unowned(unsafe) let session: Session
    public unowned(unsafe) let table: CommandTable
    public let name: String

    /// Next argument. The arity check before the handler runs guarantees the fixed ones exist.
    @inlinable
    public mutating func next() throws(CommandError) -> ByteBuffer {
        guard let argument = arguments.next() else { throw CommandError.wrongArity(name) }
        return argument
    }

    /// Next argument as an option word of a Sluice command: one given twice (by `words`, the
    /// command's own) is `-ERR syntax error`.
    mutating func nextOption(_ words: inout OptionWords) throws(CommandError) -> ByteBuffer {
        let option = try next()
        try words.first(option)
        return option
    }

    /// Longest name a client may give a limiter key, a breaker, a semantic namespace or scope:
    /// each is kept in memory for as long as its state lives, up to a million of them.
    public static let maxNameBytes = 1024

    /// Next argument, a name (see ``maxNameBytes``).
    @inlinable
    public mutating func nextName(_ what: StaticString = "key") throws(CommandError) -> ByteBuffer {
        let name = try next()
        guard name.readableBytes <= Self.maxNameBytes else {
            throw CommandError("\(what) is longer than \(Self.maxNameBytes) bytes")
        }
        return name
    }

    /// Next argument as a span of the frame (``RESPCommand/Arguments/nextSpan()``): no slice.
    @inlinable
    public mutating func nextSpan() throws(CommandError) -> Range<Int> {
        guard let span = arguments.nextSpan() else { throw missingArgument() }
        return span
    }

    /// ``nextUTF8Name(_:)`` as a span of the frame. Names are ASCII nearly always: one pass over
    /// the bytes inline, the rest (decoding, the errors) out of line.
    @inlinable
    public mutating func nextUTF8NameSpan(_ what: StaticString) throws(CommandError) -> Range<Int> {
        let span = try nextSpan()
        let ascii = span.count <= Self.maxNameBytes && arguments.withFrameBytes { raw in
            var high: UInt8 = 0
            for byte in raw.rebased(span) { high |= byte }
            return high < 0x80
        }
        if !ascii { try checkName(span, what) }
        return span
    }

    @usableFromInline @inline(never)
    func missingArgument() -> CommandError { CommandError.wrongArity(name) }

    /// A name that is not all ASCII: too long, or not valid UTF-8, or fine.
    @usableFromInline @inline(never)
    func checkName(_ span: Range<Int>, _ what: StaticString) throws(CommandError) {
        guard span.count <= Self.maxNameBytes else {
            throw CommandError("\(what) is longer than \(Self.maxNameBytes) bytes")
        }
        let valid = arguments.withFrameBytes { String(validating: $0.rebased(span), as: UTF8.self) != nil }
        guard valid else { throw CommandError("\(what) is not valid UTF-8") }
    }

    /// Next argument, a name compared as text (a semantic namespace, a scope): valid UTF-8.
    public mutating func nextUTF8Name(_ what: StaticString) throws(CommandError) -> ByteBuffer {
        arguments.slice(try nextUTF8NameSpan(what))
    }

    /// ``nextUTF8Name(_:)`` as a String.
    public mutating func nextTextName(_ what: StaticString) throws(CommandError) -> String {
        try nextUTF8Name(what).text
    }

    @inlinable
    public mutating func nextInteger() throws(CommandError) -> Int {
        guard let value = try next().decimalValue else { throw CommandError.notInteger }
        return value
    }

    public var hasMore: Bool { !arguments.isEmpty }

    /// Wall-clock ms: for expiry and age, which are persisted or shown.
    @inlinable public var now: Int64 { time.wall }
    /// Monotonic ms: for intervals kept in memory (buckets, breakers, reservations, slots).
    @inlinable public var monotonic: Int64 { time.monotonic }

    /// Writes a capability's answer with `write`: into `out` now when it is ready, or when its
    /// turn comes when it arrives later — the same function either way.
    @inlinable
    public func reply<T>(_ answer: Deferred<T>, into out: inout RESPWriter,
                         _ write: @escaping @Sendable (T, inout RESPWriter) -> Void) -> CommandResult {
        reply(answer, ordered: true, into: &out, write)
    }

    /// ``reply(_:into:_:)`` with what the writer needs besides the answer passed along: `write`
    /// can then capture nothing, and an answer that is ready costs no closure context on the
    /// heap (a capturing closure is allocated before it is known which way the answer comes —
    /// one allocation per CACHE.GET, found in `perf`).
    @inlinable
    public func reply<T, Extra: Sendable>(_ answer: Deferred<T>, passing extra: Extra, into out: inout RESPWriter,
                                          _ write: @escaping @Sendable (T, Extra, inout RESPWriter) -> Void) -> CommandResult {
        switch answer {
        case .ready(let value):
            write(value, extra, &out)
            return .done
        case .later(let future):
            return .later(future.map { value in Reply { write(value, extra, &$0) } })
        }
    }

    /// ``reply(_:into:_:)`` for an answer whose effect is decided only when it arrives: unless
    /// `ordered` (the capability has already put it in its place among this connection's
    /// requests), the next request waits for it.
    @inlinable
    public func reply<T>(_ answer: Deferred<T>, ordered: Bool, into out: inout RESPWriter,
                         _ write: @escaping @Sendable (T, inout RESPWriter) -> Void) -> CommandResult {
        switch answer {
        case .ready(let value):
            write(value, &out)
            return .done
        case .later(let future):
            let reply = future.map { value in Reply { write(value, &$0) } }
            return ordered ? .later(reply) : .laterInOrder(reply)
        }
    }
}
