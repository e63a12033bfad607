-- Sluice's RPM/TPM token buckets in Redis (shared mode): RL.TAKE, RL.RESERVE, RL.SETTLE, RL.PEEK,
-- RL.PENALIZE, RL.SYNC for every instance at once, each call one atomic script.
--
-- The Swift twin is SluiceDomain's TokenBucket + RateLimiterShard; TokenBucketDifferentialTests
-- runs both on the same seeded operations and compares every decision. Same arithmetic: levels in
-- 1/60000 token (a rate of n per minute adds n units per ms), integer ceilings, debt down to a
-- floor; all values stay below 2^53, so Lua's doubles hold them exactly (they are stored as
-- plain integers with '%.0f').
--
-- KEYS[1]  take, peek: the bucket hash    settle: the reservation hash
-- KEYS[2]  take with a reservation: the reservation hash
-- ARGV[1]  'take' | 'settle' | 'peek' | 'penalize' | 'sync'
-- ARGV[2]  now in ms, or '' for Redis's TIME (production: Redis's clock is the one clock)
-- take:     ARGV[3..7] rpm, tpm, request burst, token burst, tokens; ARGV[8] reservation TTL ms
-- settle:   ARGV[3] actual tokens
-- penalize: ARGV[3] ms to hold the emptied bucket
-- sync:     ARGV[3..5] remaining requests, remaining tokens (-1: not reported), reset ms;
--           ARGV[6..9] rpm, tpm, request burst, token burst, or absent
--
-- Bucket hash: r, t (levels), at (last refill), rpm, tpm, rb, tb (limits in force). An `at`
-- in the future is a hold (RateLimiterShard.penalize): nothing flows in or is allowed until then.
-- Reservation hash: k (bucket key), e (estimate), x (expires at).
-- Keys expire a minute after they stop mattering (bucket full again / reservation expired):
-- a missing bucket is a full one.

local unit = 60000
local floor_units = -10000000000 * unit   -- TokenBucket.floorUnits
local gc_margin = 60000

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function ceildiv(a, b) return math.ceil(a / b) end
local function str(x) return string.format('%.0f', x) end

-- TokenBucket.refill
local function refill(level, cap, rate, elapsed)
  if elapsed <= 0 then return level end
  if level < cap * unit and rate > 0 then
    local missing = cap * unit - level
    if elapsed >= ceildiv(missing, rate) then return cap * unit end
    return level + elapsed * rate
  end
  return level
end

-- TokenBucket.reconfigure
local function reconfigure(level, rate, cap, new_rate, new_cap)
  if new_rate ~= rate or new_cap ~= cap then return math.min(level, new_cap * unit) end
  return level
end

-- TokenBucket.wait
local function wait(level, need, rate)
  if level >= need then return 0 end
  return ceildiv(need - level, rate)
end

-- TokenBucket.untilFull
local function until_full(level, cap, rate)
  if level >= cap * unit then return 0 end
  return ceildiv(cap * unit - level, rate)
end

-- TokenBucket.remaining
local function remaining(level)
  if level > 0 then return math.floor(level / unit) end
  return 0
end

local function charge(level, n) return math.max(level - n * unit, floor_units) end

-- TokenBucket.heldFor
local function held(b) return math.max(b.at - now, 0) end

-- RateLimiterShard.decision: {remaining_requests, remaining_tokens, reset}
local function numbers(b)
  local rr, rt, reset = -1, -1, 0
  if b.rpm > 0 then rr = remaining(b.r); reset = math.max(reset, until_full(b.r, b.rb, b.rpm)) end
  if b.tpm > 0 then rt = remaining(b.t); reset = math.max(reset, until_full(b.t, b.tb, b.tpm)) end
  return rr, rt, held(b) + reset
end

-- RateLimiterShard.state: {remaining_requests, remaining_tokens, retry_after, reset}
local function state(b)
  local wr, wt = 0, 0
  if b.rpm > 0 then wr = wait(b.r, unit, b.rpm) end
  if b.tpm > 0 then wt = wait(b.t, 0, b.tpm) end
  local rr, rt, reset = numbers(b)
  return {rr, rt, held(b) + math.max(wr, wt), reset}
end

local function load(key)
  local s = redis.call('HMGET', key, 'r', 't', 'at', 'rpm', 'tpm', 'rb', 'tb')
  if not s[3] then return nil end
  return {r = tonumber(s[1]), t = tonumber(s[2]), at = tonumber(s[3]),
          rpm = tonumber(s[4]), tpm = tonumber(s[5]), rb = tonumber(s[6]), tb = tonumber(s[7])}
end

local function refill_both(b)
  if now > b.at then
    b.r = refill(b.r, b.rb, b.rpm, now - b.at)
    b.t = refill(b.t, b.tb, b.tpm, now - b.at)
    b.at = now
  end
end

local function save(key, b, keep_ms)
  redis.call('HSET', key, 'r', str(b.r), 't', str(b.t), 'at', str(b.at), 'rpm', str(b.rpm), 'tpm', str(b.tpm),
    'rb', str(b.rb), 'tb', str(b.tb))
  local _, _, reset = numbers(b)
  local ttl = math.max(reset, keep_ms or 0) + gc_margin   -- reset includes a hold
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end

local op = ARGV[1]

if op == 'take' then
  local rpm, tpm, rb, tb, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local b = load(KEYS[1]) or {r = rb * unit, t = tb * unit, at = now, rpm = rpm, tpm = tpm, rb = rb, tb = tb}
  -- Time until now flowed in at the limits in force until now; this request's apply from here.
  refill_both(b)
  b.r = reconfigure(b.r, b.rpm, b.rb, rpm, rb)
  b.t = reconfigure(b.t, b.tpm, b.tb, tpm, tb)
  b.rpm, b.tpm, b.rb, b.tb = rpm, tpm, rb, tb
  local hold = held(b)
  local wr, wt = 0, 0
  if rpm > 0 then wr = wait(b.r, unit, rpm) end
  if tpm > 0 then wt = wait(b.t, n * unit, tpm) end
  local allowed = 0
  local keep = 0
  if hold == 0 and wr == 0 and wt == 0 then
    allowed = 1
    if rpm > 0 then b.r = charge(b.r, 1) end
    if tpm > 0 then b.t = charge(b.t, n) end
    if KEYS[2] then
      local ttl = tonumber(ARGV[8])
      redis.call('HSET', KEYS[2], 'k', KEYS[1], 'e', str(n), 'x', str(now + ttl))
      redis.call('PEXPIRE', KEYS[2], ttl + gc_margin)
      keep = ttl   -- the bucket outlives its open reservations
    end
  end
  save(KEYS[1], b, keep)
  local rr, rt, reset = numbers(b)
  local retry = 0
  if allowed == 0 then retry = hold + math.max(wr, wt) end
  return {allowed, rr, rt, retry, reset}

elseif op == 'settle' then
  local rv = redis.call('HMGET', KEYS[1], 'k', 'e', 'x')
  if not rv[1] then return {} end
  redis.call('DEL', KEYS[1])
  if now >= tonumber(rv[3]) then return {} end   -- expired: it stays charged at its estimate
  local key, estimate, actual = rv[1], tonumber(rv[2]), tonumber(ARGV[3])
  local b = load(key)
  if not b then return {} end
  refill_both(b)
  local delta = actual - estimate
  if b.tpm > 0 then
    if delta > 0 then b.t = charge(b.t, delta) elseif delta < 0 then b.t = math.min(b.tb * unit, b.t - delta * unit) end
  end
  save(key, b, 0)
  local rt = -1
  if b.tpm > 0 then rt = remaining(b.t) end
  return {delta, rt}

elseif op == 'peek' then
  local b = load(KEYS[1])
  if not b then return {} end
  refill_both(b)
  local s = state(b)
  return {s[1], s[2], s[3], s[4], b.rpm, b.tpm}

elseif op == 'penalize' then
  -- RateLimiterShard.penalize: empty (debt stays) and hold; a missing key gets an unlimited
  -- bucket that the next take sizes (it starts empty).
  local ms = tonumber(ARGV[3])
  local b = load(KEYS[1]) or {r = 0, t = 0, at = now, rpm = 0, tpm = 0, rb = 0, tb = 0}
  refill_both(b)
  b.r, b.t = math.min(b.r, 0), math.min(b.t, 0)
  b.at = math.max(b.at, now + ms)
  save(KEYS[1], b, 0)
  return state(b)

elseif op == 'sync' then
  -- RateLimiterShard.sync
  local rr, rt, reset = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local b = load(KEYS[1])
  local rpm = tonumber(ARGV[6])
  if not b then
    if not rpm then return {} end
    local rb, tb = tonumber(ARGV[8]), tonumber(ARGV[9])
    b = {r = rb * unit, t = tb * unit, at = now, rpm = rpm, tpm = tonumber(ARGV[7]), rb = rb, tb = tb}
  end
  refill_both(b)
  if rpm then
    local tpm, rb, tb = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
    b.r = reconfigure(b.r, b.rpm, b.rb, rpm, rb)
    b.t = reconfigure(b.t, b.tpm, b.tb, tpm, tb)
    b.rpm, b.tpm, b.rb, b.tb = rpm, tpm, rb, tb
  end
  if rr >= 0 and b.rpm > 0 then b.r = math.min(rr, b.rb) * unit end
  if rt >= 0 and b.tpm > 0 then b.t = math.min(rt, b.tb) * unit end
  if reset > 0 and (rr == 0 or rt == 0) then b.at = math.max(b.at, now + reset) end
  save(KEYS[1], b, 0)
  return state(b)
end

return redis.error_reply('unknown token_bucket op ' .. tostring(op))
