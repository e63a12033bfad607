import NIOCore

/// 64-bit keyed hash of key bytes. One hash per request picks the shard and indexes the maps.
/// The seed is random per process so that clients cannot aim keys at one bucket.
public struct KeyHasher: Sendable {
    public let seed: UInt64

    public init(seed: UInt64 = UInt64.random(in: .min ... .max)) {
        self.seed = seed
    }

    @inlinable
    public func hash(_ key: ByteBuffer) -> UInt64 {
        key.withUnsafeReadableBytes { hash($0) }
    }

    /// wyhash-style mixing, 8 bytes at a time.
    @inlinable
    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = Self.mix(h ^ word, 0xBF58_476D_1CE4_E5B9)
            i += 8
        }
        if i < n, n >= 8 {
            // The last 8 bytes in one load, shifted down to the ones not yet mixed: the same
            // value the byte loop below builds, without a loop.
            let last = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
            let tail = last >> (UInt64(8 - (n - i)) &* 8)
            h = Self.mix(h ^ tail, 0x94D0_49BB_1331_11EB)
        } else if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = Self.mix(h ^ tail, 0x94D0_49BB_1331_11EB)
        }
        return Self.mix(h, 0x2545_F491_4F6C_DD1D)
    }

    @inlinable
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }
}
