import NIOCore

/// Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key, or of its hash tag — the part
/// between the first `{` and the next `}` when that part is not empty — modulo 16,384. Keys that
/// a script or a multi-key command touches together must map to one slot; Sluice names such
/// keys with a shared tag (``tagged(_:_:)``).
public enum HashSlot {
    public static let count = 16_384

    /// The slot of `key`.
    public static func of(_ key: ByteBuffer) -> Int {
        key.withUnsafeReadableBytes { of(UnsafeRawBufferPointer($0)) }
    }

    public static func of(_ bytes: UnsafeRawBufferPointer) -> Int {
        var part = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
           let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 {
            part = bytes[(open + 1)..<close]
        }
        return Int(crc16(part) & UInt16(count - 1))
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial 0), as Redis's `crc16.c`.
    static func crc16(_ bytes: Slice<UnsafeRawBufferPointer>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }

    /// `prefix` + `{key}` when the key holds no brace (readable, and the key is its own tag),
    /// else `prefix` + `{#<FNV-1a of the key>}` + the key: a key with braces of its own would
    /// otherwise end or empty the tag. Every name built from the same key this way shares its
    /// tag, so they live in one slot.
    public static func tagged(_ prefix: String, _ key: ByteBuffer) -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(prefix.utf8.count + key.readableBytes + 20)
        b.writeString(prefix)
        // An empty key would make an empty tag `{}`, which Redis ignores (the whole name is hashed).
        let braced = key.readableBytes == 0 || key.readableBytesView.contains { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "}") }
        if braced {
            b.writeString("{#")
            b.writeString(String(fnv1a(key), radix: 16))
            b.writeString("}")
            b.writeImmutableBuffer(key)
        } else {
            b.writeString("{")
            b.writeImmutableBuffer(key)
            b.writeString("}")
        }
        return b
    }

    /// FNV-1a 64: the same in every process (the in-memory key hasher is seeded per process).
    public static func fnv1a(_ key: ByteBuffer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.readableBytesView {
            h ^= UInt64(byte)
            h = h &* 0x100_0000_01b3
        }
        return h
    }
}
