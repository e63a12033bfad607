import NIOCore

/// ``RESPRequestParser`` as a NIO `ByteToMessageDecoder`, for pipelines that want one.
/// (The server's connection handler drives the parser directly to skip a pipeline hop.)
public struct RESPRequestDecoder: ByteToMessageDecoder {
    public typealias InboundOut = RESPRequest
    public var parser: RESPRequestParser

    public init(limits: RESPLimits = RESPLimits()) {
        self.parser = RESPRequestParser(limits: limits)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let request = try parser.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(request))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}
