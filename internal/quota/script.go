package quota

import (
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ratelimit"
)

// admitScript is the whole admission, in one round trip.
//
// KEYS: 1 the task's ledger record, 2 the run's result index, 3 the API
// key's waiting line (a prefix; "" without a request), 4.. the limiter's
// Checks.
// ARGV: 1 the limiter's clock ("" = Redis TIME), 2 the task's clock (ms),
// 3 ledger TTL (ms), 4 enqueued_at (ms, 0 = first_seen), 5 TASK_DEADLINE
// (ms), 6 the payload's deadline (ms, 0 = none), 7 mode (0 = begin only,
// 1 = admit a request), 8 queue, 9 tenant id, 10 task id, 11 inline wait
// (ms, the longest wait a task holds its place in the line), 12 reserve share, 13 lease slack (ms), 14 number of lanes, then
// the lanes (queue names, highest priority first), then the Checks.
//
// Returns {verdict, wait ms, guard, probe, published run, published
// status, created (1/0), then the record's HGETALL unless created}.
//
// The record's fields are internal/ledger's (first_seen, run,
// run_started, attempts); this script writes the ones a first run and an
// admission write: a first run's as ledger.Begin does, and the attempt that
// ledger.Uncount takes back when no request follows.
var admitScript = redis.NewScript(ratelimit.Lua + `
local tnow = tonumber(ARGV[2])
local rec = KEYS[1]
local created = redis.call('HSETNX', rec, 'first_seen', tnow) == 1
local run, firstSeen, runStarted = 1, tnow, tnow
if created then
  redis.call('HSET', rec, 'run', 1, 'run_started', tnow)
else
  local r = redis.call('HMGET', rec, 'first_seen', 'run', 'run_started')
  firstSeen = tonumber(r[1]) or tnow
  run = tonumber(r[2]) or 1
  runStarted = tonumber(r[3]) or firstSeen
end
redis.call('PEXPIRE', rec, ARGV[3])

local idx = redis.call('HMGET', KEYS[2], 'run', 'status')
local pubRun = tonumber(idx[1]) or 0
local function reply(verdict, wait, guard, probe, line)
  local out = {verdict, wait, guard, probe, pubRun, idx[2] or '', created and 1 or 0, line or 0}
  if not created then
    local kv = redis.call('HGETALL', rec)
    for i = 1, #kv do out[#out + 1] = kv[i] end
  end
  return out
end
if pubRun >= run then return reply('published', 0, '', 0) end
if ARGV[7] ~= '1' then return reply('begun', 0, '', 0) end

-- The deadline, as the handler computes it: a re-run's from when it
-- began; a first run's from enqueued_at, or from when a worker first saw
-- the task if that was sooner (a far-future enqueued_at).
local start = firstSeen
local enq = tonumber(ARGV[4])
if run > 1 then
  start = runStarted
elseif enq > 0 and enq < firstSeen then
  start = enq
end
local deadline = start + tonumber(ARGV[5])
local pdl = tonumber(ARGV[6])
if run == 1 and pdl > 0 and pdl < deadline then deadline = pdl end
if tnow >= deadline then return reply('expired', 0, '', 0) end

local nl = tonumber(ARGV[14])
local c = rl_open(4, 15 + nl)
local base = KEYS[3]
local myq, tenant, me = ARGV[8], ARGV[9], ARGV[9] .. ' ' .. ARGV[10]
local leases, meta = base .. ':leases', base .. ':meta'
local function laneKey(q) return base .. ':q:' .. q end
-- drop takes an entry ("TENANT TASK") out of lane q.
local function drop(q, m)
  redis.call('ZREM', laneKey(q), m)
  redis.call('ZREM', leases, q .. ' ' .. m)
  local t = string.sub(m, 1, string.find(m, ' ', 1, true) - 1)
  local f = 'n:' .. q .. ':' .. t
  if redis.call('HINCRBY', meta, f, -1) <= 0 then
    redis.call('HDEL', meta, f, 't:' .. q .. ':' .. t)
  end
end

local inLine = #c.wins > 0 and base ~= '' and redis.call('EXISTS', leases) == 1
if inLine then
  -- Entries whose worker did not come back in time leave the line.
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 64)
  for _, m in ipairs(gone) do
    local sp = string.find(m, ' ', 1, true)
    drop(string.sub(m, 1, sp - 1), string.sub(m, sp + 1))
  end
  if #gone > 0 then inLine = redis.call('EXISTS', leases) == 1 end
end

local wait, guard = rl_guard(c, now)
if wait > 0 then
  if inLine and redis.call('ZSCORE', laneKey(myq), me) then drop(myq, me) end
  return reply('refused', wait, guard, 0)
end
local free = rl_free(c, now)

if not inLine then
  if free > 0 then
    rl_take(c, now)
    redis.call('HINCRBY', rec, 'attempts', 1)
    return reply('admitted', 0, '', c.probe)
  end
  local w = rl_wait(c, now, 0)
  if w <= tonumber(ARGV[11]) and base ~= '' then
    -- An empty line starts clean: no entry outlives the leases.
    for i = 1, nl do redis.call('DEL', laneKey(ARGV[14 + i])) end
    redis.call('DEL', laneKey(myq))
    local tag = 1 + (tonumber(redis.call('HGET', meta, 'vt:' .. myq)) or 0)
    redis.call('ZADD', laneKey(myq), tag, me)
    redis.call('HSET', meta, 't:' .. myq .. ':' .. tenant, tag, 'n:' .. myq .. ':' .. tenant, 1)
    redis.call('ZADD', leases, now + w + tonumber(ARGV[13]), myq .. ' ' .. me)
    local ttl = w + 2 * tonumber(ARGV[13]) + tonumber(ARGV[11])
    redis.call('PEXPIRE', laneKey(myq), ttl)
    redis.call('PEXPIRE', leases, ttl)
    redis.call('PEXPIRE', meta, ttl)
    return reply('refused', w, 'budget', 0, 1)
  end
  return reply('refused', w, 'budget', 0)
end

-- The line: lanes in priority order; the task's own lane, if not listed,
-- comes last.
local lanes, L = {}, 0
for i = 1, nl do
  lanes[i] = ARGV[14 + i]
  if lanes[i] == myq then L = i end
end
if L == 0 then
  lanes[#lanes + 1] = myq
  L = #lanes
end
local size, credit = {}, {}
for i, q in ipairs(lanes) do
  size[i] = redis.call('ZCARD', laneKey(q))
  -- A share summed in tenths is a hair short of whole: round it.
  credit[i] = math.floor((tonumber(redis.call('HGET', meta, 'c:' .. q)) or 0) * 1e6 + 0.5) / 1e6
end
local higher = 0
for i = 1, L - 1 do higher = higher + size[i] end

local myTag = tonumber(redis.call('ZSCORE', laneKey(myq), me))
local rank, tag
if myTag then
  tag = myTag
  rank = redis.call('ZRANK', laneKey(myq), me)
else
  -- Round-robin between tenants: a tenant's next task comes one turn
  -- after its last one in the line, or at the lane's next turn if it has
  -- none there.
  local vt = tonumber(redis.call('HGET', meta, 'vt:' .. myq)) or 0
  local last = tonumber(redis.call('HGET', meta, 't:' .. myq .. ':' .. tenant)) or 0
  tag = math.max(vt, last) + 1
  rank = redis.call('ZCOUNT', laneKey(myq), '-inf', '(' .. tag)
end

local share = tonumber(ARGV[12])
local jumps = rank == 0 and higher > 0 and credit[L] >= 1
local ahead
if jumps then
  ahead = 0
else
  ahead = higher + rank
  -- A lower lane's head whose share has come due goes first.
  for i = L + 1, #lanes do
    if size[i] > 0 and credit[i] >= 1 then ahead = ahead + 1 end
  end
end
-- The head of a lower lane waits for its share, not for the higher lanes
-- to empty.
local waitAhead = ahead
if not jumps and rank == 0 and higher > 0 and share > 0 then
  waitAhead = math.min(ahead, math.ceil((1 - credit[L]) / share))
end

if free > ahead then
  rl_take(c, now)
  redis.call('HINCRBY', rec, 'attempts', 1)
  if myTag then
    drop(myq, me)
    local vt = tonumber(redis.call('HGET', meta, 'vt:' .. myq)) or 0
    if myTag > vt then redis.call('HSET', meta, 'vt:' .. myq, myTag) end
  end
  if jumps then
    redis.call('HSET', meta, 'c:' .. myq, credit[L] - 1)
  elseif share > 0 then
    -- Every grant to this lane while lower lanes wait earns them their
    -- share, split between those waiting (in the line, or handed back and
    -- due again).
    local waiting = {}
    for i = L + 1, #lanes do
      if size[i] > 0 or (tonumber(redis.call('HGET', meta, 's:' .. lanes[i])) or 0) >= now then
        waiting[#waiting + 1] = i
      end
    end
    for _, i in ipairs(waiting) do
      redis.call('HSET', meta, 'c:' .. lanes[i], math.min(credit[i] + share / #waiting, 1))
    end
  end
  return reply('admitted', 0, '', c.probe)
end

-- At least a few ms: a slot free for the tasks ahead is theirs to take.
local w = math.max(rl_wait(c, now, waitAhead), 5)
if higher > 0 and not jumps then guard = 'priority' else guard = 'budget' end
local slack = tonumber(ARGV[13])
local ttl = w + 2 * slack + tonumber(ARGV[11])
local seenF = 's:' .. myq
local seen = tonumber(redis.call('HGET', meta, seenF)) or 0
if now + w + slack > seen then redis.call('HSET', meta, seenF, now + w + slack) end
if w > tonumber(ARGV[11]) then
  -- Too long to wait in the worker: the task is handed back to asynq and
  -- leaves the line until it returns.
  if myTag then drop(myq, me) end
  redis.call('PEXPIRE', meta, math.max(ttl, redis.call('PTTL', meta)))
  return reply('refused', w, guard, 0)
end
if not myTag then
  redis.call('ZADD', laneKey(myq), tag, me)
  redis.call('HSET', meta, 't:' .. myq .. ':' .. tenant, tag)
  redis.call('HINCRBY', meta, 'n:' .. myq .. ':' .. tenant, 1)
end
redis.call('ZADD', leases, now + w + slack, myq .. ' ' .. me)
for _, k in ipairs({laneKey(myq), leases, meta}) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return reply('refused', w, guard, 0, 1)
`)
