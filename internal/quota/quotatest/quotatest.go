package quotatest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/redistest"
)

// Admitter asks for one request at a time, each for the same task, so
// that every answer is the limiter's: the task's deadline is an hour away
// and no task waits in a key's line.
type Admitter struct {
	engine *quota.Engine
	redis  redisbatch.Runner
}

// New returns an Admitter on lim's rules, with a ledger record and a
// results stream of the test's own (their keys removed at the end).
func New(tb testing.TB, rdb redis.UniversalClient, lim *ratelimit.Limiter) *Admitter {
	tb.Helper()
	name := redistest.Keys(tb, rdb, "quotatest_")
	e, err := quota.New(quota.Options{Limiter: lim, Ledger: ledger.New(rdb, name+":task:", time.Hour), Stream: name + ":results"})
	if err != nil {
		tb.Fatal(err)
	}
	return &Admitter{engine: e, redis: redisbatch.Direct{RDB: rdb}}
}

// Admit asks whether one request for key, under budget b and dailyCap
// (0: none), may be sent now; when admitted, it is counted in the key's
// budget and daily count.
func (a *Admitter) Admit(ctx context.Context, key ratelimit.Key, b ratelimit.Budget, dailyCap int) (quota.Admission, error) {
	var got func() (quota.Admission, error)
	if err := a.redis.Do(ctx, func(pipe redis.Pipeliner) {
		got = a.engine.AdmitPipelined(ctx, pipe, quota.Ticket{
			TaskID: "quotatest", Queue: "default", Now: time.Now(), TaskDeadline: time.Hour,
			Request: &quota.Request{Key: key, Budget: b, DailyCap: dailyCap},
		})
	}); err != nil {
		return quota.Admission{}, err
	}
	return got()
}

// Cooldown pauses key for the fleet as the worker does after a 429 with
// a Retry-After of wait (0: one without a hint), through
// [ratelimit.Limiter.CooldownPipelined], and returns how long the key is
// now paused.
func Cooldown(ctx context.Context, rdb redis.UniversalClient, lim *ratelimit.Limiter, key ratelimit.Key, wait time.Duration) (time.Duration, error) {
	var got func() (time.Duration, error)
	if err := (redisbatch.Direct{RDB: rdb}).Do(ctx, func(pipe redis.Pipeliner) { got = lim.CooldownPipelined(ctx, pipe, key, wait) }); err != nil {
		return 0, err
	}
	return got()
}

// Observe pauses key for the fleet as the worker does after a response
// that carried quota q, through [ratelimit.Limiter.ObservePipelined]
// with maxPause as the ceiling, and returns the pause q asked for.
func Observe(ctx context.Context, rdb redis.UniversalClient, lim *ratelimit.Limiter, key ratelimit.Key, q ratelimit.Quota, maxPause time.Duration) (time.Duration, error) {
	var got func() (time.Duration, error)
	if err := (redisbatch.Direct{RDB: rdb}).Do(ctx, func(pipe redis.Pipeliner) { got = lim.ObservePipelined(ctx, pipe, key, q, maxPause) }); err != nil {
		return 0, err
	}
	return got()
}
