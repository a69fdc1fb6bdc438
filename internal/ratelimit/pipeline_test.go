package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestHolds: none of the holds is present only while no cooldown is set
// and the breaker is closed, which is when Acquire admits a key without a
// budget.
func TestHolds(t *testing.T) {
	ctx := context.Background()
	key := Key{Provider: "p", KeyID: "k"}
	clear := func(f *fixture) bool {
		t.Helper()
		holds, err := f.lim.Holds(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range holds {
			var present bool
			if h.Field == "" {
				n, err := f.rdb.Exists(ctx, h.Key).Result()
				if err != nil {
					t.Fatal(err)
				}
				present = n == 1
			} else if present, err = f.rdb.HExists(ctx, h.Key, h.Field).Result(); err != nil {
				t.Fatal(err)
			}
			if present {
				return false
			}
		}
		return true
	}
	cases := []struct {
		name      string
		before    func(f *fixture)
		wantClear bool
	}{
		{name: "fresh", wantClear: true},
		{name: "failures below threshold", wantClear: true, before: func(f *fixture) {
			for range DefaultBreakerThreshold - 1 {
				_ = f.lim.Report(ctx, key, false, false)
			}
		}},
		{name: "cooldown", before: func(f *fixture) { _, _ = f.lim.Cooldown(ctx, key, time.Minute) }},
		{name: "breaker open", before: func(f *fixture) {
			for range DefaultBreakerThreshold {
				_ = f.lim.Report(ctx, key, false, false)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, Options{}, false)
			if tc.before != nil {
				tc.before(f)
			}
			got := clear(f)
			if got != tc.wantClear {
				t.Fatalf("clear = %v, want %v", got, tc.wantClear)
			}
			d, err := f.lim.Acquire(ctx, key, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != got {
				t.Fatalf("clear = %v but Acquire allowed = %v (%s)", got, d.Allowed, d.Reason)
			}
		})
	}
	if _, err := (&Limiter{}).Holds(Key{}); err == nil {
		t.Error("Holds of an empty key: no error")
	}
}

// TestReportPipelinedIsReport: failures reported through a pipeline open
// the breaker as Report's do, also when Redis has forgotten the script
// (its own miniredis, so flushing scripts disturbs no other test).
func TestReportPipelinedIsReport(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	l := New(rdb, Options{})
	key := Key{Provider: "p", KeyID: "k"}
	rdb.ScriptFlush(ctx)
	for range DefaultBreakerThreshold {
		pipe := rdb.Pipeline()
		got := l.ReportPipelined(ctx, pipe, key, false, false)
		_, _ = pipe.Exec(ctx)
		if err := got(); err != nil {
			t.Fatal(err)
		}
	}
	if state, err := l.BreakerState(ctx, Key{Provider: "p"}); err != nil || state != BreakerOpen {
		t.Fatalf("breaker %q (%v), want open", state, err)
	}
}
