package clients_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		headers map[string]string
		want    time.Duration
		ok      bool
	}{
		{"none", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "120"}, 2 * time.Minute, true},
		{"seconds with spaces", map[string]string{"Retry-After": " 3 "}, 3 * time.Second, true},
		{"decimal seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"zero", map[string]string{"Retry-After": "0"}, 0, true},
		{"negative", map[string]string{"Retry-After": "-5"}, 0, true},
		{"IMF-fixdate", map[string]string{"Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT"}, 30 * time.Second, true},
		{"RFC 850 date", map[string]string{"Retry-After": "Saturday, 01-Mar-25 12:01:00 GMT"}, time.Minute, true},
		{"asctime date", map[string]string{"Retry-After": "Sat Mar  1 12:00:05 2025"}, 5 * time.Second, true},
		{"date in the past", map[string]string{"Retry-After": "Sat, 01 Mar 2025 11:00:00 GMT"}, 0, true},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0, false},
		{"hex is garbage", map[string]string{"Retry-After": "0x10"}, 0, false},
		{"exponent is garbage", map[string]string{"Retry-After": "1e3"}, 0, false},
		{"garbage falls back to reset", map[string]string{"Retry-After": "soon", "RateLimit-Reset": "4"}, 4 * time.Second, true},
		{"Retry-After wins", map[string]string{"Retry-After": "2", "RateLimit-Reset": "40"}, 2 * time.Second, true},
		{"RateLimit-Reset delta", map[string]string{"RateLimit-Reset": "9"}, 9 * time.Second, true},
		{"X-RateLimit-Reset delta", map[string]string{"X-RateLimit-Reset": "11"}, 11 * time.Second, true},
		{"reset epoch seconds", map[string]string{"X-RateLimit-Reset": "1740830445"}, 45 * time.Second, true},
		{"reset epoch seconds fraction", map[string]string{"X-RateLimit-Reset": "1740830400.250"}, 250 * time.Millisecond, true},
		{"reset epoch millis", map[string]string{"RateLimit-Reset": "1740830401500"}, 1500 * time.Millisecond, true},
		{"reset epoch in the past", map[string]string{"RateLimit-Reset": "1740830000"}, 0, true},
		{"reset garbage", map[string]string{"RateLimit-Reset": "later"}, 0, false},
		{"garbage reset falls back to X-", map[string]string{"RateLimit-Reset": "later", "X-RateLimit-Reset": "6"}, 6 * time.Second, true},
		{"absurd value is capped", map[string]string{"Retry-After": "99999999999999999999"}, 100 * 365 * 24 * time.Hour, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			got, ok := clients.ParseRetryAfter(h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ParseRetryAfter(%v) = %v, %v; want %v, %v", tc.headers, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The upstream's Date header, not our clock, is what an HTTP-date
// Retry-After is measured against: skew must not change the wait.
func TestRetryAfterDateUsesServerClock(t *testing.T) {
	serverNow := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	f := setup(t, reply(429, `{}`,
		"Date", serverNow.Format(http.TimeFormat),
		"Retry-After", serverNow.Add(20*time.Second).Format(http.TimeFormat)))
	e := mustAPIError(t, call(t.Context(), f, "bundle_social"))
	if !e.RetryAfterKnown || e.RetryAfter != 20*time.Second {
		t.Errorf("RetryAfter = %v (known %v), want 20s", e.RetryAfter, e.RetryAfterKnown)
	}
}
