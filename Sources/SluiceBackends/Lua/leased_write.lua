-- CACHE.SET ... LEASE token in shared mode: stores the entry unless another caller holds a live
-- lease on the key, and ends the lease, as one atomic step (Swift twin: LeaseTable.admits).
-- LLM.GET's written-back copy (ARGV[4] = 1) is also stored only where the key holds no entry:
-- an answer stored since the reader looked is never covered by a copy of another prompt's
-- (Swift twin: EmbeddedExactCache.write with WriteCondition.copy).
--
-- KEYS[1]  the entry key       KEYS[2]  the lease key (holds the token; expires with the lease)
-- ARGV[1]  the packed entry    ARGV[2]  the writer's token (0: none)    ARGV[3]  PX ms, 0 = no expiry
-- ARGV[4]  1: a reader's copy, 0: an answer
-- Returns 1 when stored, 0 when another caller's lease refused it, -1 when a copy found an entry.

local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return 0 end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  -- An answer is there already: the holder's lease (here only the writer's own) has nothing
  -- left to wait for, and nobody else knows its token.
  if holder then redis.call('DEL', KEYS[2]) end
  return -1
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2])
return 1
