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
-- [4] lease lengths hash (slot id -> lease ms, for the mean hold),
-- [5] deadlines zset (waiter id -> when its wait ends): timeouts and wake-ups without a scan.
-- ARGV[1] 'acquire' | 'release' | 'tick' | 'cancel' | 'status'
-- ARGV[2] now in ms, or '' for Redis's TIME
-- ARGV[3] the key (as clients name it, for notices)
-- ARGV[4] aging ms, ARGV[5] most waiters
-- ARGV[6] the calling instance's channel ('' in tests): its grants come back in the reply and
--         are not published to it
-- ARGV[7] '1': undo a grant nobody heard (one Redis); '0' in a Redis Cluster, where PUBLISH
--         counts only the subscribers of the node it runs on
-- acquire: ARGV[8..12] slot id, limit, priority, wait ms, lease ms
-- release, cancel, status: ARGV[8] slot id
--
-- Reply: {kind, a, b, wake, lease_wake, n, id1, expires1, waited1, ..., timed-out ids...}
--   kind: acquire 1 granted (a = lease end) | 2 queued (a = position, b = estimated wait)
--         | 3 refused (a = position, b = retry after); release 1/0 released; cancel 1 was
--         waiting / 0 not (b = 1: holds a slot); status 2 holds a slot / 1 waiting / 0 neither;
--         tick 0
--   wake: ms until the queue next needs a tick (SlotQueue.nextWakeUp; -1: nobody waits)
--   lease_wake: ms until the first lease ends while someone waits (-1: none) — what instances
--         arm timers for; each ends its own waiters' waits itself
--   then the n grants the call made and the waits it ended.
-- A grant to a waiter of another instance is PUBLISHed on that instance's channel as
-- "g <id> <waited> <key>". When nobody hears it (the instance is gone) the grant is undone and
-- the slot goes to the next waiter: a crashed instance's waiters cannot hold slots. When grants
-- leave waiters behind, every other instance with a waiter is told the new first lease end
-- ("w <ms> <key>"). Every key expires a minute after its last lease or wait could end; an idle
-- key is deleted.

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local H, W, M, L, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, aging, max_waiters, me_channel = ARGV[3], math.max(tonumber(ARGV[4]), 1), tonumber(ARGV[5]), ARGV[6]
local undo_unheard = ARGV[7] == '1'
local gc_margin = 60000
local function str(x) return string.format('%.0f', x) end
local op = ARGV[1]

-- ms from now until the first lease end / first deadline (-1: none)
local function first_score(k)
  local e = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if e[2] then return tonumber(e[2]) end
  return nil
end

local function finish_cheap(kind, b)
  -- cancel and status: no scan of the waiters.
  local waiting = redis.call('ZCARD', D)
  local wake, lease_wake = -1, -1
  if waiting > 0 then
    local d, h = first_score(D), first_score(H)
    wake = math.max(math.min(d, h or d) - now, 0)
    if h then lease_wake = math.max(h - now, 0) end
  elseif redis.call('ZCARD', H) == 0 then
    redis.call('DEL', M, L)
  end
  return {kind, 0, b, wake, lease_wake, 0}
end

if op == 'cancel' then
  -- SlotQueue.cancel: no tick. b = 1: it holds a slot (granted before it could be cancelled).
  local kind = redis.call('HDEL', W, ARGV[8])
  redis.call('ZREM', D, ARGV[8])
  local b = 0
  if redis.call('ZSCORE', H, ARGV[8]) then b = 1 end
  return finish_cheap(kind, b)
elseif op == 'status' then
  local kind = 0
  if redis.call('ZSCORE', H, ARGV[8]) then kind = 2 elseif redis.call('HEXISTS', W, ARGV[8]) == 1 then kind = 1 end
  return {kind, 0, 0, -1, -1, 0}
end

local meta = redis.call('HMGET', M, 'limit', 'arrival', 'mean')
local limit, next_arrival, mean_hold = tonumber(meta[1]) or 1, tonumber(meta[2]) or 0, tonumber(meta[3]) or 0

-- The waiters are read (one HGETALL) only when a call needs their order: to fill free slots or
-- to place a new waiter.
local waiters
local function load_waiters()
  if waiters then return end
  waiters = {}
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
  redis.call('ZREM', D, waiters[i].id)
  table.remove(waiters, i)
end

local grants, timed_out = {}, {}
local notify = false

-- SlotQueue.fill
local function fill()
  local held = redis.call('ZCARD', H)
  if held >= limit or redis.call('HLEN', W) == 0 then return end
  load_waiters()
  while held < limit and #waiters > 0 do
    local best = 1
    for i = 2, #waiters do if precedes(waiters[i], waiters[best]) then best = i end end
    local w = waiters[best]
    remove_waiter(best)
    local waited = math.max(now - w.queued, 0)
    local heard = 1
    if w.channel ~= '' and w.channel ~= me_channel then
      heard = redis.call('PUBLISH', w.channel, 'g ' .. w.id .. ' ' .. str(waited) .. ' ' .. key)
    end
    if heard > 0 or not undo_unheard then
      local expires = now + w.lease
      redis.call('ZADD', H, str(expires), w.id)
      redis.call('HSET', L, w.id, str(w.lease))
      held = held + 1
      grants[#grants + 1] = {w.id, expires, waited}
      notify = true
    end
  end
end

-- SlotQueue.tick
local function tick()
  local ended = redis.call('ZRANGEBYSCORE', H, '-inf', str(now))
  for _, id in ipairs(ended) do
    redis.call('ZREM', H, id)
    redis.call('HDEL', L, id)
  end
  local over = redis.call('ZRANGEBYSCORE', D, '-inf', str(now))
  for _, id in ipairs(over) do
    timed_out[#timed_out + 1] = id
    redis.call('HDEL', W, id)
    redis.call('ZREM', D, id)
  end
  if waiters and #over > 0 then
    local i = 1
    while i <= #waiters do
      if waiters[i].deadline <= now then table.remove(waiters, i) else i = i + 1 end
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

local kind, a, b = 0, 0, 0

if op == 'acquire' then
  local slot, priority, wait, lease = ARGV[8], tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
  limit = math.max(tonumber(ARGV[9]), 1)
  tick()
  if redis.call('HLEN', W) == 0 and redis.call('ZCARD', H) < limit then
    redis.call('ZADD', H, str(now + lease), slot)
    redis.call('HSET', L, slot, str(lease))
    kind, a = 1, now + lease
  else
    load_waiters()
    local me = {id = slot, priority = priority, arrival = next_arrival, queued = now, deadline = now + wait, lease = lease, channel = me_channel}
    local ahead = 0
    for _, w in ipairs(waiters) do if precedes(w, me) then ahead = ahead + 1 end end
    if wait <= 0 or #waiters >= max_waiters then
      kind, a, b = 3, ahead + 1, estimated_wait(ahead + 1)
    else
      next_arrival = next_arrival + 1
      waiters[#waiters + 1] = me
      redis.call('HSET', W, slot, table.concat({str(priority), str(me.arrival), str(now), str(me.deadline), str(lease), me_channel}, ' '))
      redis.call('ZADD', D, str(me.deadline), slot)
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
  local slot = ARGV[8]
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

else
  return redis.error_reply('unknown slot_queue op ' .. tostring(op))
end

local waiting = redis.call('ZCARD', D)
local first_lease = first_score(H)
-- An idle key (no holder, no waiter) is forgotten, mean hold included, as the Swift shard
-- drops an idle queue.
if waiting == 0 and not first_lease then
  redis.call('DEL', M, L)
else
  redis.call('HSET', M, 'limit', str(limit), 'arrival', str(next_arrival), 'mean', str(mean_hold))
end

-- Keep the keys while a lease or a wait may still end (and a minute more).
local last = now
local h = redis.call('ZRANGE', H, -1, -1, 'WITHSCORES')
if h[2] then last = math.max(last, tonumber(h[2])) end
local d = redis.call('ZRANGE', D, -1, -1, 'WITHSCORES')
if d[2] then last = math.max(last, tonumber(d[2])) end
local ttl = last - now + gc_margin
for _, k in ipairs({H, W, M, L, D}) do
  if redis.call('EXISTS', k) == 1 then redis.call('PEXPIRE', k, ttl) end
end

-- SlotQueue.nextWakeUp
local wake, lease_wake = -1, -1
if waiting > 0 then
  local first = first_score(D)
  if first_lease then
    first = math.min(first, first_lease)
    lease_wake = math.max(first_lease - now, 0)
  end
  wake = math.max(first - now, 0)
end

local reply = {kind, a, b, wake, lease_wake, #grants}
for _, g in ipairs(grants) do
  reply[#reply + 1] = g[1]
  reply[#reply + 1] = g[2]
  reply[#reply + 1] = g[3]
end
for _, id in ipairs(timed_out) do reply[#reply + 1] = id end
if notify and lease_wake >= 0 then
  load_waiters()
  local told = {}
  for _, w in ipairs(waiters) do
    if w.channel ~= '' and w.channel ~= me_channel and not told[w.channel] then
      told[w.channel] = true
      redis.call('PUBLISH', w.channel, 'w ' .. str(lease_wake) .. ' ' .. key)
    end
  end
end
return reply
