import NIOCore
import SluiceDomain

/// The semantic cache's Redis-down policy, around ``RedisSemanticStore``. Searches never need
/// Redis. A change Redis did not take into the shared stream is not acknowledged: the client
/// gets `-TRYAGAIN` (or Redis's error) and this instance's index takes the change back, so it
/// holds nothing the other instances cannot see. Counted (`redis_semantic_fallbacks`).
public final class FallbackSemanticStore: SemanticStore {
    public let primary: any SemanticStore
    /// The index the primary searches and changes.
    let local: EmbeddedSemanticStore
    let policy: RedisDownPolicy

    public init(primary: any SemanticStore, local: EmbeddedSemanticStore, policy: RedisDownPolicy) {
        self.primary = primary
        self.local = local
        self.policy = policy
    }

    public func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        policy.recover(primary.set(entry, on: eventLoop), .semantic, on: eventLoop) { [local] error in
            // Applied locally before Redis was asked: take it back.
            _ = local.delete(namespace: entry.namespace, prompt: entry.prompt, scope: entry.scope, on: eventLoop)
            return .ready(.failure(.store(RedisDownPolicy.storeFailure(error))))
        }
    }

    public func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>> {
        primary.get(query, now: now, on: eventLoop)
    }

    /// A verdict Redis did not take stays on this instance only (it cannot be taken back
    /// exactly: the entry's earlier verdicts are gone); the client is told it was not shared.
    public func feedback(_ query: SemanticQuery, good: Bool, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Feedback?, SemanticFailure>> {
        policy.recover(primary.feedback(query, good: good, now: now, on: eventLoop), .semantic, on: eventLoop) { error in
            .ready(.failure(.store(RedisDownPolicy.storeFailure(error))))
        }
    }

    public func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Result<Bool, SemanticFailure>> {
        policy.recover(primary.delete(namespace: namespace, prompt: prompt, scope: scope, on: eventLoop), .semantic, on: eventLoop) { error in
            .ready(.failure(.store(RedisDownPolicy.storeFailure(error))))
        }
    }

    public func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Result<Int, SemanticFailure>> {
        policy.recover(primary.drop(namespace: namespace, on: eventLoop), .semantic, on: eventLoop) { error in
            .ready(.failure(.store(RedisDownPolicy.storeFailure(error))))
        }
    }

    public var isCaughtUp: Bool { primary.isCaughtUp }

    public func statistics() -> SemanticCache.Statistics {
        primary.statistics()
    }

    public func stillAnswers(namespace: String, scope: String, prompt: String, createdAt: Int64, answer: ByteBuffer, score: Float, minScore: Float?, query: String?, now: Int64) -> Bool {
        primary.stillAnswers(namespace: namespace, scope: scope, prompt: prompt, createdAt: createdAt, answer: answer, score: score, minScore: minScore, query: query, now: now)
    }

    public func info(namespace: String) -> SemanticCache.Info? {
        primary.info(namespace: namespace)
    }

    public func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>> {
        primary.configure(namespace: namespace, minScore: minScore, maxEntries: maxEntries, on: eventLoop)
    }
}
