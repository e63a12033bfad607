-- CACHE.GET ... LEASE after a miss in shared mode: grants the lease only if the entry is still
-- absent and nobody holds a lease, as one atomic step (Swift twin: EmbeddedExactCache.lease,
-- which decides under the shard lock). Without the entry check, a caller whose GET missed just
-- before the holder's leased write stored the answer (and ended its lease) would be granted a
-- second lease, and make a second upstream call.
--
-- KEYS[1]  the entry key       KEYS[2]  the lease key
-- ARGV[1]  the token           ARGV[2]  the lease's ms
-- Returns 1 granted, 0 another caller holds the lease, -1 the entry exists now.

if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
