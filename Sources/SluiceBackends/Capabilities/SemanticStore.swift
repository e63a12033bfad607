import NIOCore
import SluiceDomain

/// The semantic cache: the SEM.* commands are written once against this.
///
/// Implementations: ``EmbeddedSemanticStore`` (the in-memory index, kept in the SQLite file),
/// ``RedisSemanticStore`` (the same index, every change shared through a Redis stream that
/// every instance follows) and ``FallbackSemanticStore``, the Redis-down policy around it.
/// Searches always run on this process's index.
public protocol SemanticStore: Sendable {
    func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>>

    func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>>

    /// true: the prompt was there (in that scope) and is gone now.
    func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Result<Bool, SemanticFailure>>

    /// Removes a whole namespace; how many entries it had.
    func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Result<Int, SemanticFailure>>

    /// Records a verdict (`SEM.FEEDBACK`) on the entry that answers `query`; nil: none does.
    /// Persisted and shared as the entries are.
    func feedback(_ query: SemanticQuery, good: Bool, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Feedback?, SemanticFailure>>

    /// nil: no such namespace.
    func info(namespace: String) -> SemanticCache.Info?

    /// Whether the entry for `prompt` in `scope`, created at `createdAt` and still holding `answer`, would still answer a
    /// `query` under `minScore` (nil: the namespace's bar), which scored `score` against it (``SemanticCache/stillAnswers(_:scope:prompt:createdAt:answer:score:minScore:query:now:)``),
    /// on this process's index.
    func stillAnswers(namespace: String, scope: String, prompt: String, createdAt: Int64, answer: ByteBuffer, score: Float, minScore: Float?, query: String?, now: Int64) -> Bool

    /// Every namespace's numbers (this instance's index and counters), for metrics.
    func statistics() -> SemanticCache.Statistics

    /// Sets the namespace's default MINSCORE and its size bound (this instance's); answers its info.
    func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>>

    /// Whether this process's index holds what it is to hold: in shared mode, false while the
    /// stream is still being replayed from its start (the index then answers with entries the
    /// stream has since deleted or judged bad, and misses the newest) — `/ready` says so.
    var isCaughtUp: Bool { get }
}

extension SemanticStore {
    public var isCaughtUp: Bool { true }
}
