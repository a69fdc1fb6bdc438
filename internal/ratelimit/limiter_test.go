package ratelimit_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
)

var (
	bundleKey = ratelimit.Key{Provider: "bundle_social", KeyID: ratelimit.KeyID("key-one")}
	otherKey  = ratelimit.Key{Provider: "bundle_social", KeyID: ratelimit.KeyID("key-two")}
	hookedKey = ratelimit.Key{Provider: "hooked", KeyID: ratelimit.KeyID("key-one")}
)

// mustAdmit asks for one request for k.
func (f *fixture) mustAdmit(t *testing.T, k ratelimit.Key, b ratelimit.Budget, dailyCap int) quota.Admission {
	t.Helper()
	a, err := f.admit.Admit(context.Background(), k, b, dailyCap)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	return a
}

func wantAllowed(t *testing.T, a quota.Admission) {
	t.Helper()
	if a.Verdict != quota.Admitted || a.Wait != 0 || a.Guard != "" {
		t.Fatalf("admission = %+v, want admitted", a)
	}
}

func wantRefused(t *testing.T, a quota.Admission, guard quota.Guard, wait time.Duration) {
	t.Helper()
	if a.Verdict == quota.Admitted || a.Guard != guard || a.Wait != wait || a.Probe {
		t.Fatalf("admission = %+v, want refused for %s with wait %v", a, guard, wait)
	}
}

func mustBudget(t *testing.T, s string) ratelimit.Budget {
	t.Helper()
	b, err := ratelimit.ParseBudget(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The guarantee, checked on the admission times Redis recorded: with 8
// goroutines hammering one key on Redis TIME, no interval shorter than
// Per+Margin holds more than N admissions, and the budget is nearly used.
func TestWindowGuaranteeUnderConcurrency(t *testing.T) {
	f := setup(t, ratelimit.Options{}, false)
	const n = 20
	// The hour window never refuses; its log keeps every admission's score.
	b := ratelimit.Budget{{N: n, Per: time.Second}, {N: ratelimit.ExactMax, Per: time.Hour}}
	const run = 3 * time.Second
	ctx := context.Background()
	deadline := time.Now().Add(run)
	var (
		mu       sync.Mutex
		admitted int
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				d, err := f.admit.Admit(ctx, bundleKey, b, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Verdict == quota.Admitted {
					mu.Lock()
					admitted++
					mu.Unlock()
					continue
				}
				if d.Guard != quota.GuardBudget || d.Wait <= 0 || d.Wait > time.Second+ratelimit.DefaultMargin {
					t.Errorf("refusal %+v", d)
					return
				}
				time.Sleep(min(d.Wait, time.Until(deadline)))
			}
		})
	}
	wg.Wait()

	zs, err := f.rdb.ZRangeWithScores(ctx, ratelimit.WindowKey(f.lim, bundleKey, b[1]), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(zs) != admitted {
		t.Fatalf("log holds %d admissions, callers saw %d", len(zs), admitted)
	}
	at := make([]int64, len(zs))
	for i, z := range zs {
		at[i] = int64(z.Score)
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	span := (time.Second + ratelimit.DefaultMargin).Milliseconds()
	for i := 0; i+n < len(at); i++ {
		if d := at[i+n] - at[i]; d < span {
			t.Fatalf("%d admissions within %dms (from %d), want at most %d per %dms", n+1, d, at[i], n, span)
		}
	}
	// Bursts of 20 every 1.05s give 60 in 3s; 45 still means the callers
	// were not held back beyond the budget, with room for a slow machine.
	if admitted < 45 {
		t.Fatalf("admitted %d in %v with %d/1s, want at least 45", admitted, run, n)
	}
	t.Logf("admitted %d in %v", admitted, run)
}

func TestBudgetWaitIsExact(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	b := mustBudget(t, "2/1s")
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))
	f.clock.Advance(100 * time.Millisecond)
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))
	f.clock.Advance(100 * time.Millisecond)
	// The first entry, at 0, leaves the 1s+50ms window at 1050ms.
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, 850*time.Millisecond)
	f.clock.Advance(849 * time.Millisecond)
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, time.Millisecond)
	f.clock.Advance(time.Millisecond)
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))
	// Now 100 and 1050 are in the window: 100 leaves at 1150.
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, 100*time.Millisecond)

	// Keys and providers have their own budgets.
	wantAllowed(t, f.mustAdmit(t, otherKey, b, 0))
	wantAllowed(t, f.mustAdmit(t, hookedKey, b, 0))
	// "off" admits everything.
	for range 50 {
		wantAllowed(t, f.mustAdmit(t, bundleKey, ratelimit.Budget{}, 0))
	}
}

func TestNegativeMarginMeansNone(t *testing.T) {
	f := setup(t, ratelimit.Options{Margin: -1}, true)
	b := mustBudget(t, "1/1s")
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, time.Second)
}

// A refusal by any check records nothing: no window, daily count or probe
// is consumed by a request that was not sent.
func TestNoPartialConsumption(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	b := mustBudget(t, "3/1s,5/1m")
	count := func(per time.Duration) int64 {
		t.Helper()
		n, err := f.rdb.ZCard(ctx, ratelimit.WindowKey(f.lim, bundleKey, ratelimit.Window{N: 1, Per: per})).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	used := func() int {
		t.Helper()
		n, err := f.lim.DailyUsed(ctx, bundleKey)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	for range 3 {
		wantAllowed(t, f.mustAdmit(t, bundleKey, b, 100))
	}
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 100), quota.GuardBudget, 1050*time.Millisecond)
	if c := count(time.Minute); c != 3 {
		t.Fatalf("1m log holds %d after a refusal by 1s, want 3", c)
	}
	if u := used(); u != 3 {
		t.Fatalf("daily used %d, want 3", u)
	}

	f.clock.Advance(1050 * time.Millisecond)
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 100))
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 100))
	// 5 in the minute: the first leaves the 1m window at 60.05s.
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 100), quota.GuardBudget, 59*time.Second)
	if c := count(time.Second); c != 2 {
		t.Fatalf("1s log holds %d after a refusal by 1m, want 2", c)
	}

	// Once the windows have room, a cooldown still refuses, before they are
	// even looked at.
	f.clock.Advance(time.Minute)
	if _, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundleKey, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 100), quota.GuardCooldown, 5*time.Second)
	if c1, c2, u := count(time.Second), count(time.Minute), used(); c1 != 2 || c2 != 5 || u != 5 {
		t.Fatalf("after a cooldown refusal: logs %d, %d, daily %d; want 2, 5, 5", c1, c2, u)
	}
}

// On Redis TIME: a cooldown pauses one API key of one provider only.
func TestCooldownBlocksOnlyItsKey(t *testing.T) {
	f := setup(t, ratelimit.Options{}, false)
	ctx := context.Background()
	b := mustBudget(t, "5/1s")
	got, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundleKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got != 5*time.Second {
		t.Fatalf("quotatest.Cooldown = %v, want 5s", got)
	}
	d := f.mustAdmit(t, bundleKey, b, 0)
	// Generous lower bound: the machine may be slow, the wait never longer.
	if d.Verdict == quota.Admitted || d.Guard != quota.GuardCooldown || d.Wait <= 3*time.Second || d.Wait > 5*time.Second {
		t.Fatalf("decision = %+v, want a cooldown of nearly 5s", d)
	}
	wantAllowed(t, f.mustAdmit(t, otherKey, b, 0))
	wantAllowed(t, f.mustAdmit(t, hookedKey, b, 0))
}

func TestCooldownIsNeverShortened(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	for _, tc := range []struct {
		wait, want time.Duration
	}{
		{10 * time.Second, 10 * time.Second},
		{time.Second, 10 * time.Second},
		{1500 * time.Microsecond, 10 * time.Second},
		{20 * time.Second, 20 * time.Second},
	} {
		got, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundleKey, tc.wait)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("Cooldown(%v) = %v, want %v", tc.wait, got, tc.want)
		}
	}
	// A hint is rounded up to the millisecond, never down.
	got, err := quotatest.Cooldown(ctx, f.rdb, f.lim, otherKey, 1500*time.Microsecond)
	if err != nil || got != 2*time.Millisecond {
		t.Fatalf("Cooldown(1.5ms) = %v, %v; want 2ms", got, err)
	}
}

func TestCooldownExponentialWithoutHint(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	cooldown := func(wait, want time.Duration) {
		t.Helper()
		got, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundleKey, wait)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Cooldown(%v) = %v, want %v", wait, got, want)
		}
	}
	report := func(ok bool) {
		t.Helper()
		if err := f.lim.Report(ctx, bundleKey, ok, false); err != nil {
			t.Fatal(err)
		}
	}

	cooldown(0, time.Second)
	// More 429s from the same burst, and their Report(ok), change nothing.
	cooldown(0, time.Second)
	report(true)
	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 0), quota.GuardCooldown, time.Second)
	wantAllowed(t, f.mustAdmit(t, otherKey, nil, 0))

	f.clock.Advance(time.Second)
	cooldown(0, 2*time.Second)
	f.clock.Advance(2 * time.Second)
	cooldown(0, 4*time.Second)
	f.clock.Advance(4 * time.Second)
	cooldown(0, 8*time.Second)
	// A success reported during the pause came from an older request.
	f.clock.Advance(time.Second)
	report(true)
	f.clock.Advance(7 * time.Second)
	cooldown(0, 16*time.Second)
	f.clock.Advance(16 * time.Second)
	// A hint is taken as given and leaves the back-off level alone.
	cooldown(3*time.Second, 3*time.Second)
	f.clock.Advance(3 * time.Second)
	cooldown(0, 32*time.Second)
	// Success after the pause starts over.
	f.clock.Advance(32 * time.Second)
	report(true)
	cooldown(0, time.Second)
	// Capped at 5m.
	want := time.Second
	for range 12 {
		f.clock.Advance(want)
		want = min(2*want, 5*time.Minute)
		cooldown(0, want)
	}
	if want != 5*time.Minute {
		t.Fatalf("back-off reached %v, want 5m", want)
	}
}

func TestObserveSlowsDownBeforeA429(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	b := mustBudget(t, "5/1s,20/10s,100/1m")

	observe := func(key ratelimit.Key, limit, used, remaining, windowSeconds int) {
		t.Helper()
		if _, err := quotatest.Observe(ctx, f.rdb, f.lim, key, ratelimit.Quota{limit, used, remaining, windowSeconds}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Plenty left: nothing changes.
	observe(bundleKey, 100, 10, 90, 60)
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))

	// Spent: no request until the window could have reset.
	observe(bundleKey, 100, 100, 0, 60)
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardCooldown, time.Minute)
	wantAllowed(t, f.mustAdmit(t, otherKey, b, 0))

	// Nearly spent: the rest is spread over the window.
	observe(hookedKey, 100, 80, 20, 60)
	spread := (time.Minute/21 + time.Millisecond - 1).Truncate(time.Millisecond)
	wantRefused(t, f.mustAdmit(t, hookedKey, b, 0), quota.GuardCooldown, spread)
	f.clock.Advance(spread)
	wantAllowed(t, f.mustAdmit(t, hookedKey, b, 0))
}

// One response's quota pauses a key for at most the ceiling the caller
// gives (RETRY_AFTER_MAX), and contradicting fields pause nothing.
func TestObserveIsBounded(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	b := mustBudget(t, "5/1s")
	asked, err := quotatest.Observe(ctx, f.rdb, f.lim, bundleKey, ratelimit.Quota{100, 100, 0, 2592000}, time.Hour)
	if err != nil || asked != 30*24*time.Hour {
		t.Fatalf("quotatest.Observe = %v, %v; want the month asked for", asked, err)
	}
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardCooldown, time.Hour)

	_, err = quotatest.Observe(ctx, f.rdb, f.lim, hookedKey, ratelimit.Quota{100, 100, 90, 60}, time.Hour)
	var qe *ratelimit.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("quotatest.Observe of contradicting fields = %v, want a *QuotaError", err)
	}
	wantAllowed(t, f.mustAdmit(t, hookedKey, b, 0))
}

func TestBreaker(t *testing.T) {
	f := setup(t, ratelimit.Options{BreakerThreshold: 3, BreakerOpenFor: 10 * time.Second, ProbeTimeout: 2 * time.Second}, true)
	ctx := context.Background()
	report := func(k ratelimit.Key, ok, probe bool) {
		t.Helper()
		if err := f.lim.Report(ctx, k, ok, probe); err != nil {
			t.Fatal(err)
		}
	}
	state := func(want string) {
		t.Helper()
		got, err := f.lim.BreakerState(ctx, bundleKey)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("breaker %s, want %s", got, want)
		}
	}

	// Failures must be consecutive, fleet-wide: any key of the provider.
	report(bundleKey, false, false)
	report(otherKey, false, false)
	report(bundleKey, true, false)
	report(bundleKey, false, false)
	report(otherKey, false, false)
	state(ratelimit.BreakerClosed)
	wantAllowed(t, f.mustAdmit(t, bundleKey, nil, 0))
	report(bundleKey, false, false)
	state(ratelimit.BreakerOpen)

	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 0), quota.GuardBreaker, 10*time.Second)
	wantRefused(t, f.mustAdmit(t, otherKey, nil, 0), quota.GuardBreaker, 10*time.Second)
	wantAllowed(t, f.mustAdmit(t, hookedKey, nil, 0))
	// Late outcomes of requests sent before it opened do not move it.
	report(bundleKey, true, false)
	state(ratelimit.BreakerOpen)

	// Each failed probe doubles the open period, up to 5m.
	openFor := 10 * time.Second
	for _, next := range []time.Duration{20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		f.clock.Advance(openFor)
		state(ratelimit.BreakerHalfOpen)
		d := f.mustAdmit(t, bundleKey, nil, 0)
		if d.Verdict != quota.Admitted || !d.Probe {
			t.Fatalf("first request after %v open = %+v, want the probe", openFor, d)
		}
		wantRefused(t, f.mustAdmit(t, otherKey, nil, 0), quota.GuardBreaker, time.Second)
		report(bundleKey, false, true)
		state(ratelimit.BreakerOpen)
		wantRefused(t, f.mustAdmit(t, bundleKey, nil, 0), quota.GuardBreaker, next)
		openFor = next
	}

	// A successful probe closes it, and the next opening starts at 10s again.
	f.clock.Advance(openFor)
	d := f.mustAdmit(t, bundleKey, nil, 0)
	if !d.Probe {
		t.Fatalf("want the probe, got %+v", d)
	}
	report(bundleKey, true, true)
	state(ratelimit.BreakerClosed)
	d = f.mustAdmit(t, bundleKey, nil, 0)
	wantAllowed(t, d)
	if d.Probe {
		t.Fatal("a closed breaker has no probe")
	}
	for range 3 {
		report(bundleKey, false, false)
	}
	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 0), quota.GuardBreaker, 10*time.Second)
}

func TestBreakerSingleProbe(t *testing.T) {
	f := setup(t, ratelimit.Options{BreakerThreshold: 1, BreakerOpenFor: 10 * time.Second, ProbeTimeout: 3 * time.Second}, true)
	ctx := context.Background()
	if err := f.lim.Report(ctx, bundleKey, false, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)

	var (
		mu     sync.Mutex
		probes int
		wg     sync.WaitGroup
	)
	keys := []ratelimit.Key{bundleKey, otherKey}
	for i := range 16 {
		wg.Go(func() {
			d, err := f.admit.Admit(ctx, keys[i%2], nil, 0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case d.Verdict == quota.Admitted && d.Probe:
				probes++
			case d.Verdict != quota.Admitted && d.Guard == quota.GuardBreaker && d.Wait == time.Second:
			default:
				t.Errorf("decision %+v, want the probe or a 1s breaker wait", d)
			}
		})
	}
	wg.Wait()
	if probes != 1 {
		t.Fatalf("%d probes, want exactly 1", probes)
	}

	// The probe never reported (its worker died): after ProbeTimeout
	// another request probes.
	f.clock.Advance(2500 * time.Millisecond)
	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 0), quota.GuardBreaker, 500*time.Millisecond)
	f.clock.Advance(500 * time.Millisecond)
	if d := f.mustAdmit(t, otherKey, nil, 0); d.Verdict != quota.Admitted || !d.Probe {
		t.Fatalf("after the probe lease = %+v, want a new probe", d)
	}
}

// The probe slot is taken only by a request that passes every check.
func TestBreakerProbeWaitsForBudget(t *testing.T) {
	f := setup(t, ratelimit.Options{BreakerThreshold: 1, BreakerOpenFor: 10 * time.Second}, true)
	ctx := context.Background()
	b := mustBudget(t, "1/1m")
	wantAllowed(t, f.mustAdmit(t, bundleKey, b, 0))
	if err := f.lim.Report(ctx, bundleKey, false, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Second)
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, 50050*time.Millisecond)
	// Still the budget, not "another probe is in flight".
	wantRefused(t, f.mustAdmit(t, bundleKey, b, 0), quota.GuardBudget, 50050*time.Millisecond)
	f.clock.Advance(50050 * time.Millisecond)
	if d := f.mustAdmit(t, bundleKey, b, 0); d.Verdict != quota.Admitted || !d.Probe {
		t.Fatalf("decision = %+v, want the probe", d)
	}
}

func TestDailyCap(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	used := func(want int) {
		t.Helper()
		n, err := f.lim.DailyUsed(ctx, bundleKey)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("DailyUsed = %d, want %d", n, want)
		}
	}
	f.clock.Set(time.Date(2026, 3, 1, 23, 59, 58, 500_000_000, time.UTC))
	used(0)
	wantAllowed(t, f.mustAdmit(t, bundleKey, nil, 2))
	wantAllowed(t, f.mustAdmit(t, bundleKey, nil, 2))
	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 2), quota.GuardDailyCap, 1500*time.Millisecond)
	wantRefused(t, f.mustAdmit(t, bundleKey, nil, 2), quota.GuardDailyCap, 1500*time.Millisecond)
	used(2) // refusals do not count
	wantAllowed(t, f.mustAdmit(t, otherKey, nil, 2))
	// No cap: counted, never refused.
	for range 5 {
		wantAllowed(t, f.mustAdmit(t, hookedKey, nil, 0))
	}

	f.clock.Advance(1500 * time.Millisecond) // 00:00:00 UTC
	used(0)
	wantAllowed(t, f.mustAdmit(t, bundleKey, nil, 2))
	used(1)
}

// Nothing the limiter writes lives forever.
func TestEveryKeyExpires(t *testing.T) {
	f := setup(t, ratelimit.Options{BreakerThreshold: 1}, true)
	ctx := context.Background()
	wantAllowed(t, f.mustAdmit(t, bundleKey, mustBudget(t, "5/1s,100/1m"), 10))
	if _, err := quotatest.Cooldown(ctx, f.rdb, f.lim, bundleKey, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.lim.Report(ctx, bundleKey, false, false); err != nil {
		t.Fatal(err)
	}
	keys, err := f.rdb.Keys(ctx, f.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 7 { // 2 windows, daily, cooldown and its cause, back-off, breaker
		t.Fatalf("keys %v, want 7", keys)
	}
	for _, k := range keys {
		ttl, err := f.rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("%s has TTL %v, want one", k, ttl)
		}
	}
}

func TestInvalidKey(t *testing.T) {
	f := setup(t, ratelimit.Options{}, true)
	ctx := context.Background()
	for _, k := range []ratelimit.Key{{}, {Provider: "p"}, {KeyID: "x"}, {Provider: "a{b}", KeyID: "x"}} {
		if _, err := f.admit.Admit(ctx, k, nil, 0); err == nil {
			t.Errorf("Admit(%+v) succeeded, want an error", k)
		}
	}
	if _, err := f.admit.Admit(ctx, bundleKey, ratelimit.Budget{{N: 0, Per: time.Second}}, 0); err == nil {
		t.Error("Admit with a 0/1s window succeeded, want an error")
	}
}

// BenchmarkAdmit measures one admission round trip (Redis at REDIS_URL,
// else miniredis) with bundle.social's three windows.
func BenchmarkAdmit(b *testing.B) {
	f := setup(b, ratelimit.Options{}, false)
	ctx := context.Background()
	budget := ratelimit.Budget{{N: 1 << 30, Per: time.Second}, {N: 1 << 30, Per: 10 * time.Second}, {N: 1 << 30, Per: time.Minute}}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// Spread over keys so the logs stay small, as with real traffic.
		k := ratelimit.Key{Provider: "bundle_social", KeyID: string(rune('a' + i%16))}
		if _, err := f.admit.Admit(ctx, k, budget, 1000000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmitRefused measures the common case under pressure: a refusal.
func BenchmarkAdmitRefused(b *testing.B) {
	f := setup(b, ratelimit.Options{}, false)
	ctx := context.Background()
	budget := ratelimit.Budget{{N: 5, Per: time.Second}, {N: 20, Per: 10 * time.Second}, {N: 100, Per: time.Minute}}
	for b.Loop() {
		if _, err := f.admit.Admit(ctx, bundleKey, budget, 0); err != nil {
			b.Fatal(err)
		}
	}
}
