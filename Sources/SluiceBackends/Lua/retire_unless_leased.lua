-- LLM.GET retiring a written-back copy it found outdated, in shared mode: deletes the entry and
-- its stale copy unless a caller holds a live lease on the key, as one atomic step (Swift twin:
-- EmbeddedExactCache.deleteUnlessLeased). A lease is granted only on a miss, so a live one means
-- another reader retired the copy first and is asking the upstream: a delete would end its lease,
-- and the next reader would be granted a second one.
--
-- KEYS[1]  the entry key       KEYS[2]  the lease key       KEYS[3]  the stale copy's key
-- Returns 1 when deleted (or absent already), 0 when a lease is held (nothing done).

if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
return 1
