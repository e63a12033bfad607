import NIOCore

/// What a command did with its reply.
public enum CommandResult {
    /// The reply is in the output buffer.
    case done
    /// The reply comes later; the replies of later requests on this connection wait behind it.
    case later(EventLoopFuture<Reply>)
    /// The reply comes later, and the connection's next request waits for it: the command's
    /// effect is decided only when it arrives (a read-modify-write of a value the file holds,
    /// EXEC), and a request the client sent after it must see it, as in Redis.
    case laterInOrder(EventLoopFuture<Reply>)
    /// Reply written; close the connection once it is out (QUIT).
    case close
}
