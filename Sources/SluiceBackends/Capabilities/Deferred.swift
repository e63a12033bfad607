import NIOCore

/// A capability's answer: here now, or later on the caller's event loop.
///
/// Every capability method returns one, whatever implements it. The embedded implementations
/// answer from memory and return ``ready(_:)`` — no future, no allocation, no hop, which is what
/// keeps a GET at Redis's speed — while the Redis ones return ``later(_:)``. A command writes
/// its reply with one function either way (see `CommandContext.reply`).
///
/// A `later` future fails only when the backend could not answer (Redis down, a thread pool
/// shut down); refusals a client should see are values (`Result` payloads), not failures.
public enum Deferred<Value: Sendable>: Sendable {
    case ready(Value)
    case later(EventLoopFuture<Value>)

    /// Chains another step that may itself be ready or later.
    @inlinable
    public func flatMap<T>(_ next: @escaping @Sendable (Value) -> Deferred<T>) -> Deferred<T> {
        switch self {
        case .ready(let value):
            return next(value)
        case .later(let future):
            return .later(future.flatMap { value in next(value).future(on: future.eventLoop) })
        }
    }

    /// Transforms the answer, now or when it comes.
    @inlinable
    public func map<T>(_ transform: @escaping @Sendable (Value) -> T) -> Deferred<T> {
        switch self {
        case .ready(let value): return .ready(transform(value))
        case .later(let future): return .later(future.map(transform))
        }
    }

    /// The answer as a future on `eventLoop` (a ready value becomes a succeeded future).
    @inlinable
    public func future(on eventLoop: any EventLoop) -> EventLoopFuture<Value> {
        switch self {
        case .ready(let value): return eventLoop.makeSucceededFuture(value)
        case .later(let future): return future
        }
    }

    /// Every answer, in order: at once when all are ready, else when the last arrives (MGET,
    /// MSET: one capability call per key).
    public static func all<T>(_ answers: [Deferred<T>], on eventLoop: any EventLoop) -> Deferred<[T]> where Value == [T] {
        var ready: [T] = []
        ready.reserveCapacity(answers.count)
        for answer in answers {
            guard case .ready(let value) = answer else {
                return .later(EventLoopFuture.whenAllSucceed(answers.map { $0.future(on: eventLoop) }, on: eventLoop))
            }
            ready.append(value)
        }
        return .ready(ready)
    }
}
