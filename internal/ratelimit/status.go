package ratelimit

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// What the status of the fleet's keys costs and keeps.
const (
	// MaxStatusKeys bounds how many API keys of one provider Status reads,
	// so one refresh of the upstreams page costs a bounded amount of Redis
	// work however many keys were ever announced.
	MaxStatusKeys = 16
	// announceStale: a key no worker announced for this long is no longer
	// served and is left out of Status (workers announce every few
	// seconds).
	announceStale = 2 * time.Minute
	// announceForget drops a key's announcement this long after the last
	// one, so rotated keys do not pile up.
	announceForget = 24 * time.Hour
)

// Cooldown causes, as Status reports them.
const (
	CauseRetryAfter = "429 asked to wait (Retry-After or a rate-limit reset header)"
	CauseBackoff    = "429 without a wait hint: exponential back-off"
	CauseQuota      = "quota read from a response"
)

// WindowUse is one budget window's use: Used of the window's N requests
// were admitted in the last Per (+ margin).
type WindowUse struct {
	Window Window
	Used   int
}

// KeyState is what Redis holds for one API key of one provider.
type KeyState struct {
	Key      Key
	Budget   Budget // as the workers serving the key announced it
	DailyCap int    // 0: none
	// Announced is when a worker last announced the key.
	Announced time.Time
	Windows   []WindowUse
	// CooldownLeft is how long the key stays paused (0: not paused), and
	// CooldownCause why (one of the Cause* constants, with details).
	CooldownLeft  time.Duration
	CooldownCause string
	// Breaker is the breaker of the key's provider and endpoint: closed,
	// open or half_open; BreakerLeft is how long it stays open, and
	// BreakerFails the failures in a row counted while closed.
	Breaker      string
	BreakerLeft  time.Duration
	BreakerFails int
	DailyUsed    int
}

// Announce records that this process serves key with budget b and the
// daily cap, so a process that serves no key (the monitor) can show the
// fleet's keys. Workers call it every few seconds; it is one round trip.
func (l *Limiter) Announce(ctx context.Context, key Key, b Budget, dailyCap int) error {
	if err := key.validate(); err != nil {
		return err
	}
	member := key.KeyID + "|" + key.Endpoint
	info := b.String() + "|" + strconv.Itoa(max(dailyCap, 0))
	err := announceScript.Run(ctx, l.rdb, []string{l.keysKey(key.Provider)},
		l.now(), member, info, ms(announceForget), 4*MaxStatusKeys).Err()
	if err != nil {
		return fmt.Errorf("ratelimit announce: %w", err)
	}
	return nil
}

// Status reads the state of every key of the providers that a worker
// announced recently, at most MaxStatusKeys per provider, in two round
// trips: one for the announcements, one for all the keys' state.
func (l *Limiter) Status(ctx context.Context, providers []string) ([]KeyState, error) {
	pipe := l.rdb.Pipeline()
	lists := make([]*redis.MapStringStringCmd, len(providers))
	timeCmd := pipe.Time(ctx)
	for i, p := range providers {
		lists[i] = pipe.HGetAll(ctx, l.keysKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ratelimit status: %w", err)
	}
	now := timeCmd.Val()
	if l.opt.Now != nil {
		now = l.opt.Now()
	}

	var states []KeyState
	for i, p := range providers {
		var ps []KeyState
		for member, info := range lists[i].Val() {
			st, ok := parseAnnouncement(p, member, info)
			if !ok || now.Sub(st.Announced) > announceStale {
				continue
			}
			ps = append(ps, st)
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a].Announced.After(ps[b].Announced) })
		if len(ps) > MaxStatusKeys {
			ps = ps[:MaxStatusKeys]
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a].Key.KeyID < ps[b].Key.KeyID })
		states = append(states, ps...)
	}
	if len(states) == 0 {
		return nil, nil
	}

	pipe = l.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(states))
	for i, st := range states {
		keys := []string{l.cooldownKey(st.Key), l.causeKey(st.Key), l.breakerKey(st.Key), l.dailyKey(st.Key)}
		args := []any{l.now()}
		for _, w := range st.Budget {
			keys = append(keys, l.windowKey(st.Key, w))
			args = append(args, ms(w.Per+l.opt.Margin), w.buckets())
		}
		cmds[i] = statusScript.Eval(ctx, pipe, keys, args...) // EVALSHA would fail NOSCRIPT inside a pipeline
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("ratelimit status: %w", err)
	}
	for i := range states {
		res, err := cmds[i].Slice()
		if err != nil || len(res) != 6+len(states[i].Budget) {
			return nil, fmt.Errorf("ratelimit status: unexpected reply %v: %v", res, err)
		}
		st := &states[i]
		st.CooldownLeft = msDuration(res[0])
		st.CooldownCause, _ = res[1].(string)
		st.Breaker, _ = res[2].(string)
		st.BreakerLeft = msDuration(res[3])
		st.BreakerFails = int(asInt(res[4]))
		st.DailyUsed = int(asInt(res[5]))
		for j, w := range st.Budget {
			st.Windows = append(st.Windows, WindowUse{Window: w, Used: int(asInt(res[6+j]))})
		}
	}
	return states, nil
}

// parseAnnouncement reads one announcement: member "keyid|endpoint",
// info "lastSeenMs|budget|cap".
func parseAnnouncement(provider, member, info string) (KeyState, bool) {
	keyID, endpoint, ok := strings.Cut(member, "|")
	parts := strings.SplitN(info, "|", 3)
	if !ok || len(parts) != 3 {
		return KeyState{}, false
	}
	seen, err1 := strconv.ParseInt(parts[0], 10, 64)
	budget, err2 := ParseBudget(parts[1])
	dailyCap, err3 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return KeyState{}, false
	}
	return KeyState{
		Key:       Key{Provider: provider, KeyID: keyID, Endpoint: endpoint},
		Budget:    budget,
		DailyCap:  dailyCap,
		Announced: time.UnixMilli(seen),
	}, true
}

// noteCause records why key is paused until untilMS, unless a pause that
// ends later already has its cause recorded. It is best effort: the cause
// is for people, the pause itself is what admission reads.
func (l *Limiter) noteCause(ctx context.Context, key Key, cause string, paused time.Duration) {
	if paused <= 0 {
		return
	}
	_ = causeScript.Run(ctx, l.rdb, []string{l.causeKey(key)}, l.now(), ms(paused), cause).Err()
}

func (l *Limiter) keysKey(provider string) string { return l.base(provider) + "keys" }
func (l *Limiter) causeKey(k Key) string          { return l.keyBase(k) + "cooldown:cause" }

func msDuration(v any) time.Duration { return time.Duration(asInt(v)) * time.Millisecond }

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

// announceScript records a key's announcement and forgets old ones.
//
// KEYS: 1 the provider's keys hash. ARGV: 1 now, 2 member, 3 info,
// 4 forget after ms, 5 most fields kept.
var announceScript = redis.NewScript(prelude + `
redis.call('HSET', KEYS[1], ARGV[2], now .. '|' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[5]) then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local seen = tonumber(string.match(all[i + 1], '^(%d+)')) or 0
    if now - seen > tonumber(ARGV[4]) then redis.call('HDEL', KEYS[1], all[i]) end
  end
end
return 1
`)

// causeScript records a pause's cause.
//
// KEYS: 1 cause hash. ARGV: 1 now, 2 paused ms, 3 cause.
var causeScript = redis.NewScript(prelude + `
local untilT = now + tonumber(ARGV[2])
local cur = num(redis.call('HGET', KEYS[1], 'until')) or 0
if cur > untilT then return 0 end
redis.call('HSET', KEYS[1], 'until', untilT, 'cause', ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 1
`)

// statusScript reads one key's state without changing it.
//
// KEYS: 1 cooldown, 2 cause, 3 breaker, 4 daily, 5.. one log or bucket
// counter per window.
// ARGV: 1 now, then per window its span (Per + Margin) in ms and its
// buckets (0 for a log).
// Returns {cooldown left ms, cause, breaker state, breaker left ms,
// failures in a row, used today, then per window its use}.
var statusScript = redis.NewScript(prelude + `
local cd = num(redis.call('GET', KEYS[1])) or 0
local left = math.max(cd - now, 0)
local cause = ''
if left > 0 then cause = redis.call('HGET', KEYS[2], 'cause') or '' end

local br = redis.call('HMGET', KEYS[3], 'open_until', 'fails')
local openUntil = num(br[1]) or 0
local state, brLeft = 'closed', 0
if openUntil > 0 then
  if now < openUntil then state, brLeft = 'open', openUntil - now else state = 'half_open' end
end

local dd = redis.call('HMGET', KEYS[4], 'day', 'used')
local used = 0
if num(dd[1]) == math.floor(now / 86400000) then used = num(dd[2]) or 0 end

local out = {left, cause, state, brLeft, num(br[2]) or 0, used}
for i = 5, #KEYS do
  local span, buckets = tonumber(ARGV[2 * (i - 4)]), tonumber(ARGV[2 * (i - 4) + 1])
  if buckets == 0 then
    out[#out + 1] = redis.call('ZCOUNT', KEYS[i], '(' .. (now - span), '+inf')
  else
    -- As admission counts it: the buckets the span touches.
    local g = math.ceil(span / buckets)
    local first, used = math.floor(now / g) - buckets, 0
    local kv = redis.call('HGETALL', KEYS[i])
    for j = 1, #kv, 2 do
      if tonumber(kv[j]) >= first then used = used + tonumber(kv[j + 1]) end
    end
    out[#out + 1] = used
  end
end
return out
`)
