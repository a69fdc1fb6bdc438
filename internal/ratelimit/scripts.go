package ratelimit

import "github.com/redis/go-redis/v9"

// Every script starts with this prelude. Times are integer milliseconds:
// Lua numbers are doubles, and integers this size convert to Redis
// arguments exactly on both Redis and miniredis, where larger ones (e.g.
// microseconds) may be printed in exponent form. ARGV[1] is the caller's
// clock when Options.Now is set, else empty and Redis TIME decides, so that
// all workers share one clock.
const prelude = `
local function num(v)
  if v then return tonumber(v) end
  return nil
end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// acquireScript decides and records one admission.
//
// KEYS: 1 cooldown, 2 breaker, 3 daily, 4.. one log per window.
// ARGV: 1 now, 2 daily cap (0 = none), 3 probe lease ms, 4 unique member,
// then per window: its N and its span (Per + Margin) in ms.
// Returns {allowed, wait ms, reason, probe}.
var acquireScript = redis.NewScript(prelude + `
local cd = num(redis.call('GET', KEYS[1]))
if cd and cd > now then return {0, cd - now, 'cooldown', 0} end

local br = redis.call('HMGET', KEYS[2], 'open_until', 'probe_until')
local openUntil = num(br[1]) or 0
local probe = 0
if openUntil > 0 then
  if now < openUntil then return {0, openUntil - now, 'breaker', 0} end
  local probeUntil = num(br[2]) or 0
  -- Half open with a probe in flight: look again soon, since the probe
  -- may close the breaker long before its lease ends.
  if probeUntil > now then return {0, math.min(probeUntil - now, 1000), 'breaker', 0} end
  probe = 1
end

local cap = tonumber(ARGV[2])
local day = math.floor(now / 86400000)
local dd = redis.call('HMGET', KEYS[3], 'day', 'used')
local used = 0
if num(dd[1]) == day then used = num(dd[2]) or 0 end
if cap > 0 and used >= cap then return {0, (day + 1) * 86400000 - now, 'daily_cap', 0} end

local wait = 0
local nw = #KEYS - 3
for i = 1, nw do
  local key = KEYS[3 + i]
  local n = tonumber(ARGV[3 + 2 * i])
  local span = tonumber(ARGV[4 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
  local count = redis.call('ZCARD', key)
  if count >= n then
    -- Admitting needs count-n+1 entries gone: wait for the one at rank
    -- count-n. Entries stamped ahead of now (a skewed Options.Now) are
    -- counted too, which keeps the guarantee under skew.
    local e = redis.call('ZRANGE', key, count - n, count - n, 'WITHSCORES')
    local w = math.max(tonumber(e[2]) + span - now, 1)
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, wait, 'budget', 0} end

for i = 1, nw do
  local key = KEYS[3 + i]
  local span = tonumber(ARGV[4 + 2 * i])
  redis.call('ZADD', key, now, ARGV[4])
  -- Every entry has left the window span ms after the newest one.
  redis.call('PEXPIRE', key, span)
end
redis.call('HSET', KEYS[3], 'day', day, 'used', used + 1)
redis.call('PEXPIRE', KEYS[3], 2 * 86400000)
if probe == 1 then
  redis.call('HSET', KEYS[2], 'probe_until', now + tonumber(ARGV[3]))
end
return {1, 0, '', probe}
`)

// cooldownScript pauses a key.
//
// KEYS: 1 cooldown, 2 back-off. ARGV: 1 now, 2 wait ms (0 = no hint),
// 3 first back-off ms, 4 max back-off ms, 5 back-off state TTL ms.
// Returns the ms the key now stays paused.
var cooldownScript = redis.NewScript(prelude + `
local wait = tonumber(ARGV[2])
local cur = num(redis.call('GET', KEYS[1])) or 0
if wait <= 0 then
  local b = redis.call('HMGET', KEYS[2], 'level', 'until')
  local level = num(b[1]) or 0
  local bUntil = num(b[2]) or 0
  if bUntil > now then
    -- A 429 landing during the back-off it caused comes from the same
    -- burst of in-flight requests: it must not escalate again.
    wait = bUntil - now
  else
    wait = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ level, tonumber(ARGV[4])))
    if level < 30 then level = level + 1 end
    redis.call('HSET', KEYS[2], 'level', level, 'until', now + wait)
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
  end
end
-- Never shorten a pause another worker set.
local untilT = math.max(now + wait, cur)
redis.call('SET', KEYS[1], untilT, 'PX', untilT - now)
return untilT - now
`)

// reportScript records an outcome.
//
// KEYS: 1 breaker, 2 back-off. ARGV: 1 now, 2 ok (1/0), 3 probe (1/0),
// 4 threshold, 5 first open ms, 6 max open ms, 7 breaker state TTL ms.
// Returns the breaker state after the report.
var reportScript = redis.NewScript(`
-- The usual report, a success with no breaker and no back-off on record,
-- changes nothing: say so before reading the clock.
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1], KEYS[2]) == 0 then return 'closed' end
` + prelude + `
local ok = ARGV[2] == '1'
local probe = ARGV[3] == '1'
local base = tonumber(ARGV[5])
if ok then
  -- Success ends the exponential back-off, but only once its cooldown is
  -- over: a 429 reported right after its own Cooldown must not reset it.
  local bu = num(redis.call('HGET', KEYS[2], 'until'))
  if bu and now >= bu then redis.call('DEL', KEYS[2]) end
end

local b = redis.call('HMGET', KEYS[1], 'open_until', 'open_for')
local openUntil = num(b[1]) or 0
if openUntil > 0 then
  if probe then
    if ok then
      redis.call('DEL', KEYS[1])
      return 'closed'
    end
    local openFor = math.min((num(b[2]) or base) * 2, tonumber(ARGV[6]))
    redis.call('HSET', KEYS[1], 'open_until', now + openFor, 'open_for', openFor, 'probe_until', 0)
    redis.call('PEXPIRE', KEYS[1], openFor + tonumber(ARGV[7]))
    return 'open'
  end
  -- Outcomes of requests sent before the breaker opened do not move it:
  -- only the probe decides.
  if now < openUntil then return 'open' end
  return 'half_open'
end

if ok then
  redis.call('DEL', KEYS[1])
  return 'closed'
end
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
if fails >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'open_until', now + base, 'open_for', base, 'probe_until', 0)
  redis.call('PEXPIRE', KEYS[1], base + tonumber(ARGV[7]))
  return 'open'
end
return 'closed'
`)

// breakerStateScript reads a breaker. KEYS: 1 breaker. ARGV: 1 now.
var breakerStateScript = redis.NewScript(prelude + `
local openUntil = num(redis.call('HGET', KEYS[1], 'open_until')) or 0
if openUntil == 0 then return 'closed' end
if now < openUntil then return 'open' end
return 'half_open'
`)

// dailyUsedScript reads today's count. KEYS: 1 daily. ARGV: 1 now.
var dailyUsedScript = redis.NewScript(prelude + `
local d = redis.call('HMGET', KEYS[1], 'day', 'used')
if num(d[1]) == math.floor(now / 86400000) then return num(d[2]) or 0 end
return 0
`)
