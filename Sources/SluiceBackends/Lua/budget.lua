-- Sluice's spend budgets in Redis (shared mode): RL.SPEND and RL.BUDGET for every instance at
-- once. One call is one atomic check-and-charge, so no two instances can both spend the last
-- of a budget.
--
-- The Swift twin is SluiceDomain's RateLimiterShard.spend / budget with BudgetPeriod and
-- SpendWindow; BudgetDifferentialTests runs both on the same seeded spends and compares every
-- decision. Money is two integers, whole units and micro-units (0..999999): budgets reach 10^12
-- units, 10^18 micro-units, beyond the 2^53 that Lua's doubles hold exactly; as two parts every
-- value and every sum stays exact.
--
-- KEYS[1]  the window hash: su, sm (spent), bu, bm (budget), x (ends at, ms), p (period),
--          nf (near fraction, as sent), w (near signal given: 1)
-- ARGV[1]  'spend' | 'read'
-- ARGV[2]  now in ms (wall clock), or '' for Redis's TIME
-- spend:   ARGV[3..4] amount, ARGV[5..6] budget, ARGV[7] period ('day' | 'week' | 'month' | ms),
--          ARGV[8..9] near threshold (SpendWindow.nearThreshold), ARGV[10] near fraction
--          -> {allowed, remaining units, remaining micros, reset ms, near, crossed near}
-- read:    -> {spent units, spent micros, budget units, budget micros, reset ms, period, near fraction}
--          or {} when the key has no live window
-- A window's key expires a minute after the window ends.

local million = 1000000
local day = 86400000
local gc_margin = 60000

local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fdiv(a, b) return math.floor(a / b) end
local function str(x) return string.format('%.0f', x) end

-- BudgetPeriod.civil(fromDays:)
local function civil(z0)
  local z = z0 + 719468
  local era = fdiv(z, 146097)
  local doe = z - era * 146097
  local yoe = fdiv(doe - fdiv(doe, 1460) + fdiv(doe, 36524) - fdiv(doe, 146096), 365)
  local doy = doe - (365 * yoe + fdiv(yoe, 4) - fdiv(yoe, 100))
  local mp = fdiv(5 * doy + 2, 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end

-- BudgetPeriod.days(year:month:day:)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = fdiv(y, 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = fdiv(153 * mp + 2, 5) + d - 1
  local doe = yoe * 365 + fdiv(yoe, 4) - fdiv(yoe, 100) + doy
  return era * 146097 + doe - 719468
end

-- BudgetPeriod.end(after:)
local function period_end(p, t)
  local days = fdiv(t, day)
  if p == 'day' then return (days + 1) * day end
  if p == 'week' then return (days - (days + 3) % 7 + 7) * day end
  if p == 'month' then
    local y, m = civil(days)
    if m == 12 then y, m = y + 1, 1 else m = m + 1 end
    return days_from_civil(y, m, 1) * day
  end
  return t + tonumber(p)
end

local function at_least(au, am, bu, bm) return au > bu or (au == bu and am >= bm) end

local s = redis.call('HMGET', KEYS[1], 'su', 'sm', 'bu', 'bm', 'x', 'p', 'nf', 'w')
local live = s[5] and tonumber(s[5]) > now
local op = ARGV[1]

if op == 'read' then
  if not live then return {} end
  return {tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), tonumber(s[5]) - now, s[6], s[7]}

elseif op == 'spend' then
  local au, am, bu, bm = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local su, sm, x, p, warned = 0, 0, 0, ARGV[7], false
  if live then
    su, sm, x, p, warned = tonumber(s[1]), tonumber(s[2]), tonumber(s[5]), s[6], s[8] == '1'
  else
    x = period_end(ARGV[7], now)
  end
  local tu, tm = su + au, sm + am
  if tm >= million then tu, tm = tu + 1, tm - million end
  -- RateLimiterShard.spend: an amount of 0 checks whether anything is left.
  local allowed = at_least(bu, bm, tu, tm) and (au > 0 or am > 0 or not at_least(su, sm, bu, bm))
  if allowed then su, sm = tu, tm end
  local near = (bu > 0 or bm > 0) and at_least(su, sm, tonumber(ARGV[8]), tonumber(ARGV[9]))
  local crossed = near and not warned
  if crossed then warned = true end
  local ru, rm = 0, 0
  if not at_least(su, sm, bu, bm) then
    ru, rm = bu - su, bm - sm
    if rm < 0 then ru, rm = ru - 1, rm + million end
  end
  redis.call('HSET', KEYS[1], 'su', str(su), 'sm', str(sm), 'bu', str(bu), 'bm', str(bm), 'x', str(x), 'p', p,
    'nf', ARGV[10], 'w', warned and '1' or '0')
  redis.call('PEXPIRE', KEYS[1], x - now + gc_margin)
  return {allowed and 1 or 0, ru, rm, x - now, near and 1 or 0, crossed and 1 or 0}
end

return redis.error_reply('unknown budget op ' .. tostring(op))
