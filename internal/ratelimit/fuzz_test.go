package ratelimit_test

import (
	"reflect"
	"testing"

	"github.com/refreshq/refreshq/internal/ratelimit"
)

// FuzzParseBudget feeds BUNDLE_SOCIAL_RATE and HOOKED_RATE. A budget it
// accepts has positive windows and reads back the same from its String.
func FuzzParseBudget(f *testing.F) {
	for _, s := range []string{"5/1s,20/10s,100/1m", "off", " OFF ", "1/1ms", "100/1m,", "5/0s", "0/1s", "-1/1s", "5/-1s", "9223372036854775807/1h", "5/1s,5/1s", "1/1s,2/1s", "5 / 1s", "5/1d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ratelimit.ParseBudget(s)
		if err != nil {
			return
		}
		for _, w := range b {
			if w.N < 1 || w.Per <= 0 {
				t.Fatalf("ParseBudget(%q) accepted window %+v", s, w)
			}
		}
		back, err := ratelimit.ParseBudget(b.String())
		if err != nil || !reflect.DeepEqual(back, b) {
			t.Fatalf("ParseBudget(%q) = %v, whose String %q reads back as %v, %v", s, b, b.String(), back, err)
		}
	})
}

// FuzzQuotaPause feeds the quota fields of an upstream's response. A pause
// is never negative, and contradicting fields never pause.
func FuzzQuotaPause(f *testing.F) {
	f.Add(100, 100, 0, 60)
	f.Add(100, 75, 25, 60)
	f.Add(100, 100, 90, 2592000)
	f.Add(1, 1, 0, int(^uint(0)>>1))
	f.Add(0, 0, 0, 0)
	f.Add(-1, -1, -1, -1)
	f.Fuzz(func(t *testing.T, limit, used, remaining, windowSeconds int) {
		p, err := ratelimit.Quota{limit, used, remaining, windowSeconds}.Pause()
		if p < 0 || (err != nil && p != 0) {
			t.Fatalf("Pause(%d, %d, %d, %d) = %v, %v", limit, used, remaining, windowSeconds, p, err)
		}
	})
}
