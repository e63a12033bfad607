import NIOCore

extension ByteBuffer {
    /// A copy in storage of its own. Request arguments are slices of a connection's read
    /// buffer; anything kept beyond the request is copied so it does not pin that buffer.
    @inlinable
    public static func owned(_ buffer: ByteBuffer) -> ByteBuffer {
        var copy = ByteBuffer()
        copy.writeImmutableBuffer(buffer)
        return copy
    }
}
