package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
)

// Status shows what admission, 429s, quota hints and failures left in
// Redis, for every key a worker announced, and never a key nobody serves.
func TestStatusShowsTheFleetsState(t *testing.T) {
	f := setup(t, ratelimit.Options{BreakerThreshold: 2, BreakerOpenFor: 30 * time.Second}, true)
	ctx := context.Background()
	budget, _ := ratelimit.ParseBudget("5/1s,20/10s")
	bundle := ratelimit.Key{Provider: "bundle_social", KeyID: ratelimit.KeyID("k1"), Endpoint: ratelimit.EndpointID("http://b")}
	hooked := ratelimit.Key{Provider: "hooked", KeyID: ratelimit.KeyID("k2")}
	for _, k := range []ratelimit.Key{bundle, hooked} {
		if err := f.lim.Announce(ctx, k, budget, 100); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if d, err := f.admit.Admit(ctx, bundle, budget, 100); err != nil || d.Verdict != quota.Admitted {
			t.Fatalf("acquire: %+v %v", d, err)
		}
	}
	if _, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundle, 40*time.Second); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.lim.Report(ctx, hooked, false, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := quotatest.Observe(ctx, f.rdb, f.lim, hooked, ratelimit.Quota{100, 100, 0, 60}, 0); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)

	states, err := f.lim.Status(ctx, []string{"bundle_social", "hooked", "other"})
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 {
		t.Fatalf("got %d keys, want 2: %+v", len(states), states)
	}
	b, h := states[0], states[1]
	if b.Key != bundle || h.Key != hooked {
		t.Fatalf("keys %+v %+v, want %+v %+v", b.Key, h.Key, bundle, hooked)
	}
	if b.CooldownLeft != 30*time.Second || !strings.HasPrefix(b.CooldownCause, ratelimit.CauseRetryAfter) {
		t.Errorf("bundle cooldown %v %q, want 30s left from a Retry-After", b.CooldownLeft, b.CooldownCause)
	}
	if b.DailyUsed != 3 || b.DailyCap != 100 || b.Breaker != ratelimit.BreakerClosed {
		t.Errorf("bundle daily %d/%d breaker %s, want 3/100 closed", b.DailyUsed, b.DailyCap, b.Breaker)
	}
	if len(b.Windows) != 2 || b.Windows[0].Used != 0 || b.Windows[1].Used != 3 {
		t.Errorf("bundle windows %+v, want 0 in the last 1s and 3 in the last 10s", b.Windows)
	}
	if h.Breaker != ratelimit.BreakerOpen || h.BreakerLeft != 20*time.Second {
		t.Errorf("hooked breaker %s, %v left; want open, 20s left", h.Breaker, h.BreakerLeft)
	}
	if h.CooldownLeft != 50*time.Second || !strings.HasPrefix(h.CooldownCause, ratelimit.CauseQuota) || !strings.Contains(h.CooldownCause, "0 of 100") {
		t.Errorf("hooked cooldown %v %q, want 50s left from the quota", h.CooldownLeft, h.CooldownCause)
	}

	// A key nobody announced for a while is no longer served.
	f.clock.Advance(ratelimit.AnnounceStale + time.Second)
	if states, err = f.lim.Status(ctx, []string{"bundle_social", "hooked"}); err != nil || len(states) != 0 {
		t.Errorf("stale keys still shown: %+v %v", states, err)
	}
}

func TestStatusReadsAtMostMaxStatusKeys(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	budget, _ := ratelimit.ParseBudget("5/1s")
	for i := range ratelimit.MaxStatusKeys + 5 {
		if err := f.lim.Announce(ctx, ratelimit.Key{Provider: "hooked", KeyID: ratelimit.KeyID(string(rune('a' + i)))}, budget, 0); err != nil {
			t.Fatal(err)
		}
	}
	states, err := f.lim.Status(ctx, []string{"hooked"})
	if err != nil || len(states) != ratelimit.MaxStatusKeys {
		t.Fatalf("got %d keys (%v), want %d", len(states), err, ratelimit.MaxStatusKeys)
	}
}
