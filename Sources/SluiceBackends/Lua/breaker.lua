-- Sluice's circuit breaker in Redis (shared mode): CB.ALLOW, CB.REPORT, CB.STATE, CB.FORCE,
-- CB.CONFIG for every instance at once, each call one atomic script, so a breaker tripped through
-- one instance is open for all at their next call and no transition races another.
--
-- The Swift twin is SluiceDomain's CircuitBreaker; BreakerDifferentialTests runs both on the
-- same seeded operations and compares every decision. Every operation first lets time act
-- (advance), as the Swift one does.
--
-- KEYS[1]  the breaker hash
-- ARGV[1]  'allow' | 'report' | 'state' | 'force' | 'config'
-- ARGV[2]  now in ms, or '' for Redis's TIME (production: Redis's clock is the one clock)
-- ARGV[3..9]  the default policy: window, min_calls, failure_rate, slow_ms, slow_rate, open_ms, probes
-- report: ARGV[10..12] ticket, 'ok' | 'fail', latency ms
-- force:  ARGV[10] 'open' | 'closed' | 'auto'
-- config: ARGV[10..] field, value, ... (the policy fields above)
--
-- Hash: the policy fields once configured, and state, gen, forced, win (the last `window`
-- outcomes, oldest first, one digit each: 1 failure, 2 slow), opened_at, half_since, issued,
-- succ, tc (ticket counter).

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local k = KEYS[1]
local op = ARGV[1]
local raw = redis.call('HGETALL', k)
local h = {}
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local function num(f, d) return tonumber(h[f]) or tonumber(d) end

local window, mincalls, frate = num('window', ARGV[3]), num('min_calls', ARGV[4]), num('failure_rate', ARGV[5])
local slowms, srate, openms, probes = num('slow_ms', ARGV[6]), num('slow_rate', ARGV[7]), num('open_ms', ARGV[8]), num('probes', ARGV[9])
local st, gen, forced = h['state'] or 'closed', num('gen', 1), h['forced'] or ''
local win, openedAt, halfSince = h['win'] or '', num('opened_at', 0), num('half_since', 0)
local issued, succ, tc = num('issued', 0), num('succ', 0), num('tc', 0)
local ticket_base = 16777216   -- 2^24: CircuitBreaker.ticketCounterBits

local function str(x) return string.format('%.0f', x) end

local function transition(to)
  st = to; gen = gen + 1; tc = 0; win = ''; issued = 0; succ = 0
  if to == 'open' then openedAt = now end
  if to == 'half_open' then halfSince = now end
end

local function advance()
  if forced ~= '' then return end
  if st == 'open' and now >= openedAt + openms then transition('half_open')
  elseif st == 'half_open' and issued >= probes and now >= halfSince + openms then issued = succ; halfSince = now end
end

local function count(bit)
  local n = 0
  for i = 1, #win do
    local b = tonumber(string.sub(win, i, i))
    if (bit == 1 and b % 2 == 1) or (bit == 2 and b >= 2) then n = n + 1 end
  end
  return n
end

local function save()
  redis.call('HSET', k, 'state', st, 'gen', str(gen), 'forced', forced, 'win', win, 'opened_at', str(openedAt),
    'half_since', str(halfSince), 'issued', str(issued), 'succ', str(succ), 'tc', str(tc))
end

-- 1, 2, ... 2^24-1, then 1 again: never 0, never into the generation's bits.
local function ticket() tc = tc % (ticket_base - 1) + 1; return gen * ticket_base + tc end

advance()

if op == 'allow' then
  local r
  if forced == 'open' then r = {0, 'open', 0, -1}
  elseif forced == 'closed' then r = {1, 'closed', ticket(), 0}
  elseif st == 'closed' then r = {1, 'closed', ticket(), 0}
  elseif st == 'open' then r = {0, 'open', 0, openedAt + openms - now}
  elseif issued < probes then issued = issued + 1; r = {1, 'half_open', ticket(), 0}
  else r = {0, 'half_open', 0, math.max(halfSince + openms - now, 1)} end
  save()
  return r

elseif op == 'report' then
  local tk, outcome, latency = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
  local shown = st
  if forced ~= '' then shown = forced end
  if forced ~= '' or math.floor(tk / ticket_base) ~= gen or st == 'open' then save(); return {0, shown} end
  local fail = outcome == 'fail'
  local slow = latency > slowms
  if st == 'closed' then
    local c = 0
    if fail then c = c + 1 end
    if slow then c = c + 2 end
    win = string.sub(win .. tostring(c), -window)
    local n = #win
    if n >= mincalls and (count(1) / n >= frate or count(2) / n >= srate) then transition('open') end
  else
    if fail or slow then transition('open') else
      succ = succ + 1
      if succ >= probes then transition('closed') end
    end
  end
  save()
  return {1, st}

elseif op == 'force' then
  if ARGV[10] == 'auto' then forced = '' else forced = ARGV[10] end
  if forced == 'open' then transition('open') else transition('closed') end
  save()
  return {}

elseif op == 'config' then
  for i = 10, #ARGV, 2 do redis.call('HSET', k, ARGV[i], ARGV[i + 1]); h[ARGV[i]] = ARGV[i + 1] end
  window = num('window', ARGV[3])
  -- A smaller window forgets its oldest outcomes at once.
  if #win > window then win = string.sub(win, -window) end
  save()
  -- The rates as the strings they were given in (tostring would round them to 14 digits).
  return {num('window', ARGV[3]), num('min_calls', ARGV[4]), h['failure_rate'] or ARGV[5], num('slow_ms', ARGV[6]),
    h['slow_rate'] or ARGV[7], num('open_ms', ARGV[8]), num('probes', ARGV[9])}

elseif op == 'state' then
  save()
  local nextms = 0
  if st == 'open' and forced == '' then nextms = math.max(openedAt + openms - now, 0) end
  local shown = st
  if forced ~= '' then shown = forced end
  return {shown, forced, #win, count(1), count(2), nextms, gen, issued}
end

return redis.error_reply('unknown breaker op ' .. tostring(op))
