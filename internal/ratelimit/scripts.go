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

// Lua holds the limiter's checks as Lua functions, so that a script of
// another package (the quota engine's admission) decides a request in the
// same round trip, on the same rules. A script starts with Lua, then:
//
//	local c = rl_open(ki, ai)  -- the keys and arguments of Limiter.Checks
//	local wait, reason = rl_guard(c, now)  -- cooldown, breaker, daily cap
//	local free = rl_free(c, now)  -- slots free in every window now
//	local w = rl_wait(c, now, r)  -- ms until r+1 more slots are free
//	rl_take(c, now)  -- record one admission
//
// rl_guard returns 0 when nothing holds the request back; rl_free must
// run before rl_wait and rl_take, which use the counts it read.
const Lua = prelude + `
local DAY = 86400000
local function rl_open(ki, ai)
  local c = {cd = KEYS[ki], br = KEYS[ki + 1], daily = KEYS[ki + 2],
    cap = tonumber(ARGV[ai]), lease = tonumber(ARGV[ai + 1]), member = ARGV[ai + 2],
    probe = 0, wins = {}}
  local nw = tonumber(ARGV[ai + 3])
  for i = 1, nw do
    local a = ai + 4 + 3 * (i - 1)
    c.wins[i] = {key = KEYS[ki + 2 + i], n = tonumber(ARGV[a]), span = tonumber(ARGV[a + 1]),
      buckets = tonumber(ARGV[a + 2])}
  end
  return c
end

local function rl_guard(c, now)
  -- One EXISTS answers the usual case, where neither a cooldown nor a
  -- breaker record is there.
  local openUntil = 0
  local br
  if redis.call('EXISTS', c.cd, c.br) > 0 then
    local cd = num(redis.call('GET', c.cd))
    if cd and cd > now then return cd - now, 'cooldown' end
    br = redis.call('HMGET', c.br, 'open_until', 'probe_until')
    openUntil = num(br[1]) or 0
  end
  if openUntil > 0 then
    if now < openUntil then return openUntil - now, 'breaker' end
    local probeUntil = num(br[2]) or 0
    -- Half open with a probe in flight: look again soon, since the probe
    -- may close the breaker long before its lease ends.
    if probeUntil > now then return math.min(probeUntil - now, 1000), 'breaker' end
    c.probe = 1
  end
  c.day = math.floor(now / DAY)
  local dd = redis.call('HMGET', c.daily, 'day', 'used')
  c.used = 0
  if num(dd[1]) == c.day then c.used = num(dd[2]) or 0 end
  if c.cap > 0 and c.used >= c.cap then return (c.day + 1) * DAY - now, 'daily_cap' end
  return 0, ''
end

-- A window of N <= ExactMax is a log: a sorted set of admission times. A
-- larger one counts admissions in buckets of ceil(span/B) ms (a hash of
-- bucket -> count) and counts the oldest bucket whole although part of it
-- may have left the span, which can only refuse early, never admit late.
local function rl_count(w, now)
  if w.buckets == 0 then
    redis.call('ZREMRANGEBYSCORE', w.key, '-inf', now - w.span)
    w.count = redis.call('ZCARD', w.key)
    return
  end
  -- The hash keeps, beside the buckets, their sum and the oldest bucket
  -- that may hold admissions ("lo"), so that a call drops only the
  -- buckets that left since the last one.
  w.g = math.ceil(w.span / w.buckets)
  w.first = math.floor(now / w.g) - w.buckets
  local h = redis.call('HMGET', w.key, 'sum', 'lo')
  local sum, lo = tonumber(h[1]) or 0, tonumber(h[2]) or w.first
  if lo < w.first then
    if w.first - lo > w.buckets then
      redis.call('DEL', w.key)
      sum = 0
    else
      for k = lo, w.first - 1 do
        local v = tonumber(redis.call('HGET', w.key, k))
        if v then
          sum = sum - v
          redis.call('HDEL', w.key, k)
        end
      end
      redis.call('HSET', w.key, 'sum', sum, 'lo', w.first)
    end
  end
  w.count = sum
end

local function rl_free(c, now)
  local free = math.huge
  for _, w in ipairs(c.wins) do
    rl_count(w, now)
    free = math.min(free, w.n - w.count)
  end
  return free
end

-- rl_wait: ms until r+1 more admissions fit in every window, if nothing
-- else is admitted meanwhile: when the entry at rank count-n+r leaves. An
-- entry admitted after now (rank >= count) is assumed to come a span after
-- the one it replaces.
local function rl_wait(c, now, r)
  local wait = 0
  for _, w in ipairs(c.wins) do
    local rank = w.count - w.n + r
    if rank >= 0 then
      local at
      if w.count == 0 then
        at = now + w.span * (1 + math.floor(rank / w.n))
      elseif w.buckets == 0 then
        local laps = math.floor(rank / w.count)
        local e = redis.call('ZRANGE', w.key, rank % w.count, rank % w.count, 'WITHSCORES')
        at = tonumber(e[2]) + w.span * (1 + laps)
      else
        local laps = math.floor(rank / w.count)
        local left, cum = rank % w.count, 0
        for k = w.first, w.first + w.buckets do
          cum = cum + (tonumber(redis.call('HGET', w.key, k)) or 0)
          if cum > left then
            at = (k + w.buckets + 1) * w.g + w.span * laps
            break
          end
        end
      end
      -- Entries stamped ahead of now (a skewed Options.Now) are counted
      -- too, which keeps the guarantee under skew.
      wait = math.max(wait, at - now, 1)
    end
  end
  return wait
end

local function rl_take(c, now)
  for _, w in ipairs(c.wins) do
    if w.buckets == 0 then
      redis.call('ZADD', w.key, now, c.member)
      -- Every entry has left the window span ms after the newest one.
      redis.call('PEXPIRE', w.key, w.span)
    else
      redis.call('HINCRBY', w.key, math.floor(now / w.g), 1)
      redis.call('HINCRBY', w.key, 'sum', 1)
      redis.call('HSETNX', w.key, 'lo', w.first)
      redis.call('PEXPIRE', w.key, (w.buckets + 2) * w.g)
    end
  end
  -- The count lives two days after the last day it was used on: its TTL
  -- is set when a day's count starts.
  if c.used == 0 then
    redis.call('HSET', c.daily, 'day', c.day, 'used', 1)
    redis.call('PEXPIRE', c.daily, 2 * DAY)
  else
    redis.call('HINCRBY', c.daily, 'used', 1)
  end
  if c.probe == 1 then
    redis.call('HSET', c.br, 'probe_until', now + c.lease)
  end
end
`

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
  -- over: a 429 reported right after its own cooldown must not reset it.
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
