-- A dual token bucket (requests and tokens per minute) in one Redis key, the way most
-- Redis-backed limiters work: load once with SCRIPT LOAD, call with EVALSHA.
-- Same arithmetic as Sluice's RL.TAKE: levels in 1/60000 token, continuous refill.
--   EVALSHA <sha> 1 <key> <rpm> <tpm> <tokens>
--   -> {allowed, remaining_requests, remaining_tokens, retry_after_ms, reset_ms}
local key = KEYS[1]
local rpm, tpm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local unit = 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', key, 'r', 't', 'at')
local r = tonumber(s[1]) or rpm * unit
local tk = tonumber(s[2]) or tpm * unit
local at = tonumber(s[3]) or now
local elapsed = now - at
if elapsed > 0 then
  r = math.min(rpm * unit, r + elapsed * rpm)
  tk = math.min(tpm * unit, tk + elapsed * tpm)
end
local allowed = 0
if r >= unit and tk >= n * unit then
  r = r - unit
  tk = tk - n * unit
  allowed = 1
end
redis.call('HSET', key, 'r', r, 't', tk, 'at', now)
redis.call('PEXPIRE', key, 60000)
local retry = 0
if allowed == 0 then
  local wr, wt = 0, 0
  if r < unit then wr = math.ceil((unit - r) / rpm) end
  if tk < n * unit then wt = math.ceil((n * unit - tk) / tpm) end
  retry = math.max(wr, wt)
end
local reset = math.max(math.ceil((rpm * unit - r) / rpm), math.ceil((tpm * unit - tk) / tpm))
return {allowed, math.floor(r / unit), math.floor(tk / unit), retry, reset}
