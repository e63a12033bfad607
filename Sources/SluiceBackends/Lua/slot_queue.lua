-- Sluice's concurrency slots with a priority queue in Redis (shared mode): RL.ACQUIRE and
-- RL.RELEASE for every instance at once — one set of holders and one queue per key, each call
-- one atomic script.
--
-- The Swift twin is SluiceDomain's SlotQueue; SlotQueueDifferentialTests runs both on the same
-- seeded operations and compares every outcome, grant, timeout and wake-up. Same rules: at most
-- `limit` holders, each a lease; waiters by effective priority (priority + one level per
-- `aging` ms waited), then arrival; a freed slot goes to the best waiter at once.
--
-- KEYS (one hash tag, so one cluster slot): [1] holders zset (slot id -> lease end),
-- [2] waiters hash (id -> "priority arrival queued_at deadline lease channel"),
-- [3] meta hash (limit, arrival = next arrival number, mean = mean hold ms),
-- [4] lease lengths hash (slot id -> lease ms, for the mean hold).
-- ARGV[1] 'acquire' | 'release' | 'tick' | 'cancel' | 'status'
-- ARGV[2] now in ms, or '' for Redis's TIME
-- ARGV[3] the key (as clients name it, for wake-up notices)
-- ARGV[4] aging ms, ARGV[5] most waiters
-- acquire: ARGV[6..11] slot id, limit, priority, wait ms, lease ms, channel of the asking instance
-- release, cancel, status: ARGV[6] slot id
--
-- Reply: {kind, a, b, wake, n, id1, expires1, waited1, ..., idn, expiresn, waitedn, timed-out ids...}
--   kind: acquire 1 granted (a = lease end) | 2 queued (a = position, b = estimated wait)
--         | 3 refused (a = position, b = retry after); release 1/0 released; cancel 1 was
--         waiting / 0 not (b = 1: holds a slot); status 2 holds a slot / 1 waiting / 0 neither;
--         tick 0
--   wake: ms from now until the queue next needs a tick (-1: nobody waits)
--   then the n grants the call made (each also PUBLISHed to its waiter's channel as
--   "g <id> <waited>") and the waits it ended.
-- When grants leave waiters behind, every instance with a waiter is told the new wake-up
-- ("w <ms> <key>" on its channel): a new holder's lease may end before anything it knew of.
-- Every key expires a minute after its last lease or wait could end; an idle key is deleted.

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local H, W, M, L = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local key, aging, max_waiters = ARGV[3], math.max(tonumber(ARGV[4]), 1), tonumber(ARGV[5])
local gc_margin = 60000
local function str(x) return string.format('%.0f', x) end

local meta = redis.call('HMGET', M, 'limit', 'arrival', 'mean')
local limit, next_arrival, mean_hold = tonumber(meta[1]) or 1, tonumber(meta[2]) or 0, tonumber(meta[3]) or 0

-- Waiters, read once: {id, priority, arrival, queued, deadline, lease, channel}
local waiters = {}
do
  local all = redis.call('HGETALL', W)
  for i = 1, #all, 2 do
    local p, a, q, d, l, c = string.match(all[i + 1], '^(%S+) (%S+) (%S+) (%S+) (%S+) ?(.*)$')
    waiters[#waiters + 1] = {id = all[i], priority = tonumber(p), arrival = tonumber(a), queued = tonumber(q),
                             deadline = tonumber(d), lease = tonumber(l), channel = c}
  end
end

local function effective(w) return w.priority + math.floor(math.max(now - w.queued, 0) / aging) end

-- SlotQueue.precedes
local function precedes(a, b)
  local pa, pb = effective(a), effective(b)
  if pa ~= pb then return pa > pb end
  return a.arrival < b.arrival
end

local function remove_waiter(i)
  redis.call('HDEL', W, waiters[i].id)
  table.remove(waiters, i)
end

local grants, timed_out = {}, {}

-- SlotQueue.fill
local function fill()
  local held = redis.call('ZCARD', H)
  while held < limit and #waiters > 0 do
    local best = 1
    for i = 2, #waiters do if precedes(waiters[i], waiters[best]) then best = i end end
    local w = waiters[best]
    remove_waiter(best)
    local expires = now + w.lease
    redis.call('ZADD', H, str(expires), w.id)
    redis.call('HSET', L, w.id, str(w.lease))
    held = held + 1
    grants[#grants + 1] = {w.id, expires, math.max(now - w.queued, 0), w.channel}
  end
end

-- SlotQueue.tick
local function tick()
  local ended = redis.call('ZRANGEBYSCORE', H, '-inf', str(now))
  for _, id in ipairs(ended) do
    redis.call('ZREM', H, id)
    redis.call('HDEL', L, id)
  end
  local i = 1
  while i <= #waiters do
    if waiters[i].deadline <= now then
      timed_out[#timed_out + 1] = waiters[i].id
      remove_waiter(i)
    else
      i = i + 1
    end
  end
  fill()
end

-- SlotQueue.estimatedWait
local function estimated_wait(position)
  local rounds = math.floor((position + limit - 1) / limit)
  if mean_hold > 0 then return mean_hold * rounds end
  local n = redis.call('ZCARD', H)
  if n == 0 then return 0 end
  local i = math.min(position - 1, n - 1)
  local e = redis.call('ZRANGE', H, i, i, 'WITHSCORES')
  return math.max(tonumber(e[2]) - now, 0)
end

-- SlotQueue.nextWakeUp, as ms from now
local function wake()
  if #waiters == 0 then return -1 end
  local first = math.huge
  for _, w in ipairs(waiters) do first = math.min(first, w.deadline) end
  local h = redis.call('ZRANGE', H, 0, 0, 'WITHSCORES')
  if h[2] then first = math.min(first, tonumber(h[2])) end
  return math.max(first - now, 0)
end

local op = ARGV[1]
local kind, a, b = 0, 0, 0

if op == 'acquire' then
  local slot, priority, wait, lease, channel = ARGV[6], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
  limit = math.max(tonumber(ARGV[7]), 1)
  tick()
  if #waiters == 0 and redis.call('ZCARD', H) < limit then
    redis.call('ZADD', H, str(now + lease), slot)
    redis.call('HSET', L, slot, str(lease))
    kind, a = 1, now + lease
  else
    local me = {id = slot, priority = priority, arrival = next_arrival, queued = now, deadline = now + wait, lease = lease, channel = channel}
    local ahead = 0
    for _, w in ipairs(waiters) do if precedes(w, me) then ahead = ahead + 1 end end
    if wait <= 0 or #waiters >= max_waiters then
      kind, a, b = 3, ahead + 1, estimated_wait(ahead + 1)
    else
      next_arrival = next_arrival + 1
      waiters[#waiters + 1] = me
      redis.call('HSET', W, slot, table.concat({str(priority), str(me.arrival), str(now), str(me.deadline), str(lease), channel}, ' '))
      fill()   -- nothing, unless the limit was raised
      kind, a, b = 2, ahead + 1, estimated_wait(ahead + 1)
      for i, g in ipairs(grants) do
        if g[1] == slot then
          kind, a, b = 1, g[2], 0
          table.remove(grants, i)
          break
        end
      end
    end
  end

elseif op == 'release' then
  local slot = ARGV[6]
  local expires = redis.call('ZSCORE', H, slot)
  if expires then
    expires = tonumber(expires)
    redis.call('ZREM', H, slot)
    local lease = tonumber(redis.call('HGET', L, slot))
    if expires > now and lease then
      local held = math.max(lease - (expires - now), 0)
      if mean_hold == 0 then mean_hold = held else mean_hold = math.floor((mean_hold * 7 + held) / 8) end
    end
    redis.call('HDEL', L, slot)
    if expires > now then kind = 1 end
  end
  tick()

elseif op == 'tick' then
  tick()

elseif op == 'cancel' then
  -- SlotQueue.cancel: no tick. b = 1: it holds a slot (granted before it could be cancelled).
  for i, w in ipairs(waiters) do
    if w.id == ARGV[6] then
      remove_waiter(i)
      kind = 1
      break
    end
  end
  if redis.call('ZSCORE', H, ARGV[6]) then b = 1 end

elseif op == 'status' then
  if redis.call('ZSCORE', H, ARGV[6]) then
    kind = 2
  elseif redis.call('HEXISTS', W, ARGV[6]) == 1 then
    kind = 1
  end

else
  return redis.error_reply('unknown slot_queue op ' .. tostring(op))
end

-- An idle key (no holder, no waiter) is forgotten, mean hold included, as the Swift shard
-- drops an idle queue.
if #waiters == 0 and redis.call('ZCARD', H) == 0 then
  redis.call('DEL', M, L)
else
  redis.call('HSET', M, 'limit', str(limit), 'arrival', str(next_arrival), 'mean', str(mean_hold))
end

-- Keep the keys while a lease or a wait may still end (and a minute more).
local last = now
local h = redis.call('ZRANGE', H, -1, -1, 'WITHSCORES')
if h[2] then last = math.max(last, tonumber(h[2])) end
for _, w in ipairs(waiters) do last = math.max(last, w.deadline) end
local ttl = last - now + gc_margin
for _, k in ipairs({H, W, M, L}) do
  if redis.call('EXISTS', k) == 1 then redis.call('PEXPIRE', k, ttl) end
end

local next_wake = wake()
local reply = {kind, a, b, next_wake, #grants}
for _, g in ipairs(grants) do
  reply[#reply + 1] = g[1]
  reply[#reply + 1] = g[2]
  reply[#reply + 1] = g[3]
  if g[4] ~= '' then redis.call('PUBLISH', g[4], 'g ' .. g[1] .. ' ' .. str(g[3])) end
end
for _, id in ipairs(timed_out) do reply[#reply + 1] = id end
if #grants > 0 and next_wake >= 0 then
  local told = {}
  for _, w in ipairs(waiters) do
    if w.channel ~= '' and not told[w.channel] then
      told[w.channel] = true
      redis.call('PUBLISH', w.channel, 'w ' .. str(next_wake) .. ' ' .. key)
    end
  end
end
return reply
