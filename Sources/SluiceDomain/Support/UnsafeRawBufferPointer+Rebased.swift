extension UnsafeRawBufferPointer {
    /// `count` bytes from `start`, bounds-checked, as a buffer of its own (named apart from the
    /// standard library's `bytes`, a `RawSpan`). What
    /// `UnsafeRawBufferPointer(rebasing: self[a..<b])` says, without the generic `Slice` work
    /// (`dropFirst`, `distance`) that was not specialised away on the hit paths.
    @inlinable @inline(__always)
    public func rebased(from start: Int, count: Int) -> UnsafeRawBufferPointer {
        precondition(start >= 0 && count >= 0 && start <= self.count - count, "rebased(from:count:) out of bounds")
        guard count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: baseAddress! + start, count: count)
    }

    /// The bytes from `start` to the end.
    @inlinable @inline(__always)
    public func rebased(from start: Int) -> UnsafeRawBufferPointer {
        rebased(from: start, count: count - start)
    }

    /// The bytes of `range`.
    @inlinable @inline(__always)
    public func rebased(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        rebased(from: range.lowerBound, count: range.count)
    }
}
