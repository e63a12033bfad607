import NIOCore
import SluiceDomain

/// The semantic cache's Redis-down policy, around ``RedisSemanticStore``: a change Redis did not
/// take is kept in this instance's index (other instances do not see it) and answered as done,
/// counted in `redis_fallbacks`. Searches never need Redis.
public final class FallbackSemanticStore: SemanticStore {
    public let primary: RedisSemanticStore
    let policy: RedisDownPolicy

    public init(primary: RedisSemanticStore, policy: RedisDownPolicy) {
        self.primary = primary
        self.policy = policy
    }

    var local: EmbeddedSemanticStore { primary.local }

    public func set(_ entry: SemanticWrite, on eventLoop: any EventLoop) -> Deferred<Result<Void, SemanticFailure>> {
        // The primary applied it to the local index before it asked Redis.
        policy.recover(primary.set(entry, on: eventLoop), .cache, on: eventLoop) { .ready(.success(())) }
    }

    public func get(_ query: SemanticQuery, now: Int64, on eventLoop: any EventLoop) -> Deferred<Result<SemanticNamespace.Outcome, SemanticFailure>> {
        primary.get(query, now: now, on: eventLoop)
    }

    public func delete(namespace: String, prompt: String, scope: String, on eventLoop: any EventLoop) -> Deferred<Bool> {
        let held = local.contains(namespace: namespace, prompt: prompt, scope: scope)
        return policy.recover(primary.delete(namespace: namespace, prompt: prompt, scope: scope, on: eventLoop), .cache, on: eventLoop) { .ready(held) }
    }

    public func drop(namespace: String, on eventLoop: any EventLoop) -> Deferred<Int> {
        let held = local.info(namespace: namespace)?.entries ?? 0
        return policy.recover(primary.drop(namespace: namespace, on: eventLoop), .cache, on: eventLoop) { .ready(held) }
    }

    public func info(namespace: String) -> SemanticCache.Info? {
        primary.info(namespace: namespace)
    }

    public func configure(namespace: String, minScore: Float?, maxEntries: Int?, on eventLoop: any EventLoop) -> Deferred<Result<SemanticCache.Info, SemanticFailure>> {
        primary.configure(namespace: namespace, minScore: minScore, maxEntries: maxEntries, on: eventLoop)
    }
}
