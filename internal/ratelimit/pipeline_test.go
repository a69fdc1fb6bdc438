package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
)

// TestPipelinedPausesHoldTheKey: a cooldown and a quota that calls for a
// pause, queued on one pipeline, pause their keys so that the admission
// script refuses them for the cooldown, also when Redis has forgotten the
// script (its own miniredis, so flushing scripts disturbs no other test);
// a quota with plenty left queues nothing.
func TestPipelinedPausesHoldTheKey(t *testing.T) {
	rdb, _ := redistest.MiniClient(t)
	ctx := context.Background()
	l := ratelimit.New(rdb, ratelimit.Options{})
	key := ratelimit.Key{Provider: "p", KeyID: "k"}
	other := ratelimit.Key{Provider: "p", KeyID: "o"}
	rdb.ScriptFlush(ctx)
	pipe := rdb.Pipeline()
	cd := l.CooldownPipelined(ctx, pipe, key, 3*time.Second)
	plenty := l.ObservePipelined(ctx, pipe, other, ratelimit.Quota{Limit: 100, Used: 10, Remaining: 90, WindowSeconds: 60}, 0)
	if pipe.Len() != 1 {
		t.Fatalf("%d commands queued, want 1 (the cooldown)", pipe.Len())
	}
	spent := l.ObservePipelined(ctx, pipe, other, ratelimit.Quota{Limit: 100, Used: 100, Remaining: 0, WindowSeconds: 60}, 0)
	_, _ = pipe.Exec(ctx)
	if d, err := cd(); err != nil || d != 3*time.Second {
		t.Fatalf("cooldown = %v, %v; want 3s", d, err)
	}
	_, errPlenty := plenty()
	asked, errSpent := spent()
	if err := errors.Join(errPlenty, errSpent); err != nil || asked != time.Minute {
		t.Fatalf("spent quota asked %v (%v), want 1m", asked, err)
	}
	admit := quotatest.New(t, rdb, l)
	for _, k := range []ratelimit.Key{key, other} {
		a, err := admit.Admit(ctx, k, nil, 0)
		if err != nil || a.Verdict == quota.Admitted || a.Guard != quota.GuardCooldown {
			t.Fatalf("Admit(%s) = %+v, %v; want refused for the cooldown", k.KeyID, a, err)
		}
	}
}

// TestReportPipelinedIsReport: failures reported through a pipeline open
// the breaker as Report's do, also when Redis has forgotten the script
// (its own miniredis, so flushing scripts disturbs no other test).
func TestReportPipelinedIsReport(t *testing.T) {
	rdb, _ := redistest.MiniClient(t)
	ctx := context.Background()
	l := ratelimit.New(rdb, ratelimit.Options{})
	key := ratelimit.Key{Provider: "p", KeyID: "k"}
	rdb.ScriptFlush(ctx)
	for range ratelimit.DefaultBreakerThreshold {
		pipe := rdb.Pipeline()
		got := l.ReportPipelined(ctx, pipe, key, false, false)
		_, _ = pipe.Exec(ctx)
		if err := got(); err != nil {
			t.Fatal(err)
		}
	}
	if state, err := l.BreakerState(ctx, ratelimit.Key{Provider: "p"}); err != nil || state != ratelimit.BreakerOpen {
		t.Fatalf("breaker %q (%v), want open", state, err)
	}
}
