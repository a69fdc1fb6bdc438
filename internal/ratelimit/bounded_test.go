package ratelimit_test

import (
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/testenv"
)

// A window above ExactMax counts in buckets: driven at saturation by a
// clock that moves in uneven steps, it never admits more than N in any
// span, and it admits at least N per span + span/Buckets.
func TestBoundedWindowNeverExceeds(t *testing.T) {
	for _, n := range []int{ratelimit.ExactMax + 1, 2000} {
		t.Run(ratelimit.Window{N: n, Per: time.Second}.String(), func(t *testing.T) {
			f := setup(t, ratelimit.Options{}, true)
			b := ratelimit.Budget{{N: n, Per: time.Second}}
			span := (time.Second + ratelimit.DefaultMargin).Milliseconds()
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			start := f.clock.Now()
			var at []int64
			const run = 4 * time.Second
			for f.clock.Now().Sub(start) < run {
				// Bursts of asks, sometimes larger than what is free.
				for range rng.IntN(n / 4) {
					d := f.mustAdmit(t, bundleKey, b, 0)
					if d.Verdict != quota.Admitted {
						if d.Guard != quota.GuardBudget || d.Wait <= 0 || d.Wait > time.Duration(span+span/ratelimit.Buckets+1)*time.Millisecond {
							t.Fatalf("refusal %+v", d)
						}
						break
					}
					at = append(at, f.clock.Now().UnixMilli())
				}
				f.clock.Advance(time.Duration(1+rng.IntN(40)) * time.Millisecond)
			}
			sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
			for i := 0; i+n < len(at); i++ {
				if d := at[i+n] - at[i]; d < span {
					t.Fatalf("%d admissions within %dms, want at most %d per %dms", n+1, d, n, span)
				}
			}
			// The exact log would admit N per span; the buckets at least
			// N per span·(1+1/Buckets), less a span for the last one cut
			// short by the end of the run.
			lower := float64(n) * (float64(run.Milliseconds())/(float64(span)*(1+1.0/ratelimit.Buckets)) - 1)
			if float64(len(at)) < lower {
				t.Fatalf("admitted %d in %v, want at least %.0f", len(at), run, lower)
			}
			t.Logf("admitted %d in %v (exact log: at most %d)", len(at), run, int64(n)*(run.Milliseconds()/span+1))
		})
	}
}

// A bucket counter holds a few hundred bytes whatever N is, where the
// exact log grows with N.
func TestBoundedWindowMemory(t *testing.T) {
	testenv.RequireRedisURL(t) // MEMORY USAGE needs a real Redis
	ctx := context.Background()
	usage := func(t *testing.T, w ratelimit.Window, asks int) int64 {
		f := setup(t, ratelimit.Options{}, true)
		b := ratelimit.Budget{w}
		for i := range asks {
			f.mustAdmit(t, bundleKey, b, 0)
			if i%50 == 49 {
				f.clock.Advance(40 * time.Millisecond)
			}
		}
		n, err := f.rdb.MemoryUsage(ctx, ratelimit.WindowKey(f.lim, bundleKey, w)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	bounded := usage(t, ratelimit.Window{N: 100000, Per: time.Second}, 3000)
	if bounded > 512 {
		t.Errorf("bucket counter of 100000/1s after 3000 admissions: %d bytes, want at most 512", bounded)
	}
	exact := usage(t, ratelimit.Window{N: ratelimit.ExactMax, Per: time.Hour}, ratelimit.ExactMax)
	if exact < 20*bounded {
		t.Errorf("exact log of %d entries: %d bytes, expected far above the counter's %d", ratelimit.ExactMax, exact, bounded)
	}
	t.Logf("MEMORY USAGE: bucket counter %d B, exact log of %d entries %d B", bounded, ratelimit.ExactMax, exact)
}
