import NIOCore
import SluiceDomain
import SluiceProtocol

/// CACHE.GET / CACHE.SET: the cache with layer, age, token/cost accounting and leases.
enum RichCacheCommands: CommandGroup {
    static func commands(_ env: ServerEnvironment) -> [Command] {
        let cache = env.cache
        let maxLease = env.configuration.maxLeaseMilliseconds
        return [
            Command("cache.get", arity: -2, summary: "CACHE.GET key [LEASE ms]: [value|nil, layer|nil, age_ms|nil, lease_token|nil]") { ctx, out throws(CommandError) in
                let key = try ctx.next()
                var leaseMilliseconds: Int64 = 0
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard option.isKeyword("LEASE"), ctx.hasMore else { throw CommandError.syntax }
                    let ms = try ctx.nextInteger()
                    guard ms > 0, Int64(ms) <= maxLease else {
                        throw CommandError("LEASE must be between 1 and \(maxLease) ms")
                    }
                    leaseMilliseconds = Int64(ms)
                }
                let now = ctx.now
                switch cache.read(key, now: now, on: ctx.eventLoop) {
                case .hit(let value, let meta, let layer):
                    writeHit(&out, value: value.bytes, layer: layer, age: now - meta.createdAt)
                    return .done
                case .miss:
                    writeMiss(&out, token: lease(cache, env, key, now: now, duration: leaseMilliseconds))
                    return .done
                case .fetching(let future):
                    let owned = TieredCache.copy(key), leaseMilliseconds = leaseMilliseconds
                    let eventLoop = ctx.eventLoop
                    return .later(future.flatMap { found -> EventLoopFuture<RESPValue> in
                        if let (value, meta) = found {
                            return eventLoop.makeSucceededFuture(.array([.bulkString(value), .bulk("l2"), .integer(Int(now - meta.createdAt)), .null]))
                        }
                        return leaseAfterMiss(cache, env, owned, now: now, duration: leaseMilliseconds, on: eventLoop).map { token in
                            .array([.null, .null, .null, token.map { .bulk(String($0)) } ?? .null])
                        }
                    })
                }
            },
            Command("cache.set", arity: -3, summary: "CACHE.SET key value [PX ms | EX s] [TOKENS n] [COST c] [LEASE token]: +OK") { ctx, out throws(CommandError) in
                let key = try ctx.next(), value = try ctx.next()
                var meta = EntryMeta(createdAt: ctx.now)
                var leaseToken: UInt64?
                while ctx.hasMore {
                    let option = try ctx.next()
                    guard ctx.hasMore else { throw CommandError.syntax }
                    if option.isKeyword("PX") || option.isKeyword("EX") {
                        guard meta.expiresAt == 0 else { throw CommandError.syntax }
                        meta.expiresAt = try ExactCacheCommands.expiry(try ctx.nextInteger(), unitMilliseconds: option.isKeyword("EX") ? 1000 : 1, now: ctx.now, command: "cache.set")
                    } else if option.isKeyword("TOKENS") {
                        let tokens = try ctx.nextInteger()
                        guard tokens >= 0 else { throw CommandError("TOKENS must not be negative") }
                        meta.tokens = Int64(tokens)
                    } else if option.isKeyword("COST") {
                        guard let cost = try ctx.next().doubleValue, cost >= 0 else {
                            throw CommandError("COST must be a non-negative number")
                        }
                        meta.cost = cost
                    } else if option.isKeyword("LEASE") {
                        guard let token = UInt64(try ctx.next().text) else { throw CommandError("LEASE token is not valid") }
                        leaseToken = token
                    } else {
                        throw CommandError.syntax
                    }
                }
                if let leaseToken, let shared = cache.shared {
                    let owned = TieredCache.copy(key), value = TieredCache.copy(value), now = ctx.now, meta = meta
                    return .later(shared.writeWithLease(owned, value: value, meta: meta, token: leaseToken, now: now, on: ctx.eventLoop)
                        .map { stored -> RESPValue in
                            if stored { cache.writeLocal(owned, value: value, meta: meta, condition: .always, now: now) }
                            return stored ? .simpleString("OK") : .error(leaseRefused.line)
                        }.recover { _ in
                            // Redis down: the local lease table decides, as in embedded mode.
                            shared.countFallback()
                            let hash = cache.hash(owned)
                            guard cache.keyspace.withShard(hash: hash, { $0.leases.admits(hash, token: leaseToken, now: now) }) else {
                                return .error(leaseRefused.line)
                            }
                            cache.writeLocal(owned, value: value, meta: meta, condition: .always, now: now)
                            return .simpleString("OK")
                        })
                }
                if let leaseToken {
                    let hash = cache.hash(key)
                    let admitted = cache.keyspace.withShard(hash: hash) { $0.leases.admits(hash, token: leaseToken, now: ctx.now) }
                    guard admitted else { throw leaseRefused }
                }
                if cache.shared != nil {
                    return .later(cache.writeShared(key, value: value, meta: meta, condition: .always, now: ctx.now, on: ctx.eventLoop)
                        .map { _ in .simpleString("OK") })
                }
                cache.write(key, value: value, meta: meta, now: ctx.now)
                out.writeRESPOK()
                return .done
            },
        ]
    }

    static let leaseRefused = CommandError("lease token is not the current lease on this key (it expired and another caller holds it); value not stored")

    /// After an L2 miss: in shared mode the lease is cluster-wide (Redis SET NX PX); otherwise,
    /// or while Redis is down, this instance's lease table decides.
    static func leaseAfterMiss(_ cache: TieredCache, _ env: ServerEnvironment, _ key: ByteBuffer, now: Int64, duration: Int64,
                               on eventLoop: any EventLoop) -> EventLoopFuture<UInt64?> {
        guard duration > 0, let shared = cache.shared else {
            return eventLoop.makeSucceededFuture(lease(cache, env, key, now: now, duration: duration))
        }
        let token = env.newLeaseToken()
        return shared.acquireLease(key, token: token, milliseconds: duration, on: eventLoop).map { granted -> UInt64? in
            cache.keyspace.withShard(hash: cache.hash(key)) { shard in
                if granted { shard.counters.leasesGranted += 1 } else { shard.counters.leaseWaits += 1 }
            }
            return granted ? token : nil
        }.recover { _ in
            shared.countFallback()
            return lease(cache, env, key, now: now, duration: duration)
        }
    }

    /// After a miss, asks for a lease when the caller wanted one. nil: no lease (not asked,
    /// or another caller is computing the value).
    static func lease(_ cache: TieredCache, _ env: ServerEnvironment, _ key: ByteBuffer, now: Int64, duration: Int64) -> UInt64? {
        guard duration > 0 else { return nil }
        let hash = cache.hash(key)
        let token = env.newLeaseToken()
        let outcome = cache.keyspace.withShard(hash: hash) { shard -> CacheShard.LeaseOutcome in
            // Someone may have stored the value since the miss: then no lease is needed.
            if shard.expiry(key, hash: hash, now: now) != nil { return .heldByAnother }
            return shard.lease(hash: hash, token: token, now: now, duration: duration)
        }
        if case .granted(let t) = outcome { return t }
        return nil
    }

    static func writeHit(_ out: inout RESPWriter, value: ArraySlice<UInt8>, layer: TieredCache.Layer, age: Int64) {
        out.writeRESPArrayHeader(4)
        out.writeRESPBulk(bytes: value)
        out.writeStaticString(layer == .l1 ? "$2\r\nl1\r\n" : "$2\r\nl2\r\n")
        out.writeRESPInteger(Int(max(age, 0)))
        out.writeRESPNull()
    }

    static func writeMiss(_ out: inout RESPWriter, token: UInt64?) {
        out.writeRESPArrayHeader(4)
        out.writeRESPNull()
        out.writeRESPNull()
        out.writeRESPNull()
        if let token { out.writeRESPBulk(String(token)) } else { out.writeRESPNull() }
    }
}
