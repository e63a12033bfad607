-- A string command (INCRBY, INCRBYFLOAT, APPEND) on an exact-cache entry, with Redis's own
-- semantics: Redis runs the command itself, on the value as the client wrote it.
--
-- KEYS[1]: the entry (sluice:c:{key}). ARGV[1]: the command, ARGV[2]: its argument,
-- ARGV[3]: the header the result is stored with (created now, no tokens, no cost).
--
-- Sluice stores a value with a header ("SL1" + created-at, tokens, cost; "SL2" adds a tag) that
-- RedisExactCache.unpack strips on reads. The header is stripped here first, as unpack would
-- (same lengths, same fallbacks), so `SET n 10` then `INCR n` answers 11 as redis-server does;
-- the result gets a fresh header (a changed value no longer stands for the tokens it saved), so
-- that a result beginning with "SL1" is never mistaken for one. If the command refuses (not a
-- number), the value is put back as it was: a refused INCR changes nothing.
local key = KEYS[1]
local value = redis.pcall('GET', key)
if type(value) == 'table' and value.err then return value end -- WRONGTYPE: a hash

local body = nil
if value and #value >= 27 then
  local magic = string.sub(value, 1, 3)
  if magic == 'SL1' then
    body = string.sub(value, 28)
  elseif magic == 'SL2' and #value >= 28 then
    local n = string.byte(value, 28)
    if #value >= 28 + n then body = string.sub(value, 29 + n) end
  end
end
if body then redis.call('SET', key, body, 'KEEPTTL') end

local reply = redis.pcall(ARGV[1], key, ARGV[2])
if type(reply) == 'table' and reply.err then
  if body then redis.call('SET', key, value, 'KEEPTTL') end
  return reply
end
local result = redis.call('GET', key)
redis.call('SET', key, ARGV[3] .. result, 'KEEPTTL')
-- Lua numbers are doubles: INCRBY's 64-bit result is answered as the text instead, which the
-- caller reads as the integer.
if ARGV[1] == 'INCRBY' then return result end
return reply
