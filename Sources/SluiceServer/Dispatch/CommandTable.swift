import NIOCore

/// Name → command, looked up from the raw verb bytes (any case) with no allocation:
/// an open-addressing table keyed by a case-folded FNV-1a hash.
public final class CommandTable: Sendable {
    public let commands: [Command]
    /// Lower-case names as bytes, compared without going through String.
    let names: [[UInt8]]
    let slots: [Int32]
    let mask: Int

    public init(_ commands: [Command]) {
        self.commands = commands
        var size = 16
        while size < commands.count * 4 { size <<= 1 }
        var slots = [Int32](repeating: -1, count: size)
        for (i, command) in commands.enumerated() {
            var s = Int(Self.hash(command.name.utf8)) & (size - 1)
            while slots[s] != -1 {
                precondition(commands[Int(slots[s])].name != command.name, "command \(command.name) defined twice")
                s = (s + 1) & (size - 1)
            }
            slots[s] = Int32(i)
        }
        self.slots = slots
        names = commands.map { Array($0.name.utf8) }
        mask = size - 1
    }

    /// The commands of every group, in order.
    public convenience init(groups: [any CommandGroup]) {
        self.init(groups.flatMap(\.commands))
    }

    @inlinable
    static func hash<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var h: UInt32 = 2_166_136_261
        for b in bytes { h = (h ^ UInt32(b | 0x20)) &* 16_777_619 }
        return h
    }

    /// Index of the command named by `verb` (any case), or nil.
    public func lookup(_ verb: ByteBuffer) -> Int? {
        verb.withUnsafeReadableBytes { bytes -> Int? in
            var s = Int(Self.hash(bytes)) & mask
            while true {
                let i = Int(slots[s])
                if i < 0 { return nil }
                if Self.matches(names[i], bytes) { return i }
                s = (s + 1) & mask
            }
        }
    }

    /// `name` is lower case; `bytes` may be any case.
    @inline(__always)
    static func matches(_ name: [UInt8], _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard name.count == bytes.count else { return false }
        for i in 0..<name.count where name[i] != bytes[i] | 0x20 && name[i] != bytes[i] {
            return false
        }
        return true
    }

    public func command(named name: String) -> Command? {
        lookup(ByteBuffer(string: name)).map { commands[$0] }
    }
}
