package handlers

import (
	"cmp"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// TestBatchedRoundTripsKeepBehaviour runs the same cases with the handler's
// Redis calls batched (its redisbatch.Runner a Batcher) and one by one (a
// Direct): a cooldown or an open breaker still holds the request back
// although the provider has no budget, a redelivered task gets no second
// result, and a plain success publishes one entry that counts one attempt.
func TestBatchedRoundTripsKeepBehaviour(t *testing.T) {
	cases := []struct {
		name      string
		before    func(t *testing.T, rdb redis.UniversalClient, l *ratelimit.Limiter, key ratelimit.Key)
		runs      int
		wantCalls int64
		wantLater bool
		wantEntry bool
		// deadline replaces TASK_DEADLINE; wantKind expects a failed entry.
		deadline time.Duration
		wantKind results.ErrorKind
	}{
		{name: "clear", runs: 1, wantCalls: 1, wantEntry: true},
		{name: "redelivered", runs: 2, wantCalls: 1, wantEntry: true},
		// Counted as the task began, then found past its deadline: the
		// count is taken back, as no request was sent.
		{name: "deadline passed", runs: 1, deadline: time.Nanosecond, wantKind: results.KindTimeout},
		{name: "cooldown", runs: 1, wantLater: true, before: func(t *testing.T, rdb redis.UniversalClient, l *ratelimit.Limiter, key ratelimit.Key) {
			if _, err := quotatest.Cooldown(context.Background(), rdb, l, key, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "breaker open", runs: 1, wantLater: true, before: func(t *testing.T, rdb redis.UniversalClient, l *ratelimit.Limiter, key ratelimit.Key) {
			for range ratelimit.DefaultBreakerThreshold {
				if err := l.Report(context.Background(), key, false, false); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, batched := range []bool{true, false} {
		for _, tc := range cases {
			name := tc.name + "/unbatched"
			if batched {
				name = tc.name + "/batched"
			}
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				var calls atomic.Int64
				h, rdb, stream := testRefresh(t, func(context.Context, tasks.Refresh) (clients.Response, error) {
					calls.Add(1)
					return clients.Response{StatusCode: 200, Body: []byte(`{"success":true,"data":{"account":{}}}`)}, nil
				})
				h.taskDeadline = cmp.Or(tc.deadline, time.Hour)
				key := hookedKey
				if !batched {
					h.redis = redisbatch.Direct{RDB: rdb}
				}
				if tc.before != nil {
					tc.before(t, rdb, h.limiter, key)
				}
				task, err := tasks.NewTask(tasks.Hooked("a1"))
				if err != nil {
					t.Fatal(err)
				}
				var last error
				for range tc.runs {
					last = h.ProcessTask(ctx, task)
				}
				var later *retry.LaterError
				if got := errors.As(last, &later); got != tc.wantLater {
					t.Fatalf("ProcessTask = %v, want a retry.LaterError: %v", last, tc.wantLater)
				}
				if !tc.wantLater && tc.wantKind == "" && last != nil {
					t.Fatalf("ProcessTask = %v, want nil", last)
				}
				if n := calls.Load(); n != tc.wantCalls {
					t.Errorf("upstream called %d times, want %d", n, tc.wantCalls)
				}
				entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
				if err != nil && !errors.Is(err, redis.Nil) {
					t.Fatal(err)
				}
				if tc.wantEntry {
					if len(entries) != 1 {
						t.Fatalf("%d entries, want 1", len(entries))
					}
					e := results.FromValues(entries[0].ID, entries[0].Values)
					if e.Status != results.StatusSucceeded || e.Attempts != 1 || e.HTTPStatus != 200 {
						t.Errorf("entry %+v, want succeeded after 1 attempt with 200", e)
					}
					// A first run that succeeded leaves no ledger record
					// behind (a redelivery makes a new one, and ends).
					if n := rdb.Exists(ctx, h.ledger.Key("")).Val(); tc.runs == 1 && n != 0 {
						t.Errorf("ledger record kept after the task succeeded")
					}
				} else if tc.wantKind != "" {
					if len(entries) != 1 {
						t.Fatalf("%d entries, want 1", len(entries))
					}
					e := results.FromValues(entries[0].ID, entries[0].Values)
					if e.Status != results.StatusFailed || e.ErrorKind != tc.wantKind || e.Attempts != 0 {
						t.Errorf("entry %+v, want failed with %s after 0 attempts", e, tc.wantKind)
					}
				} else if len(entries) != 0 {
					t.Errorf("%d entries, want none", len(entries))
				}
			})
		}
	}
}
