import NIOCore

/// What a command did with its reply.
public enum CommandResult {
    /// The reply is in the output buffer.
    case done
    /// The reply comes later; the replies of later requests on this connection wait behind it.
    case later(EventLoopFuture<Reply>)
    /// Reply written; close the connection once it is out (QUIT).
    case close
}
