package simulator

import (
	"net/http"
	"strings"
	"time"
)

// Demo returns the options `worker -demo` runs with: realistic latency,
// DemoScript's rules, and a few random 429s and 500s for every other
// subject. The seed is fixed so a demo run can be repeated.
func Demo() Options {
	return Options{
		Latency: 80 * time.Millisecond,
		Jitter:  220 * time.Millisecond,
		Seed:    1,
		P429:    0.05,
		P500:    0.05,
		Script:  DemoScript,
	}
}

// demoSlow is how much longer a "slow" subject takes: noticeable in the
// demo's output, well inside the default upstream timeout.
const demoSlow = 2 * time.Second

// DemoScript answers by the subject and call count as the package doc's
// table says, and leaves every other subject to the random outcomes.
func DemoScript(c Call) *Reply {
	s := strings.ToLower(c.Subject)
	// After a rule's failures, answer 200 explicitly so a random outcome
	// cannot blur what the rule shows.
	ok := &Reply{Status: http.StatusOK}
	switch {
	case strings.Contains(s, "gone") || strings.HasPrefix(s, "missing"):
		return &Reply{Status: http.StatusNotFound}
	case strings.Contains(s, "flaky"):
		if c.N <= 2 {
			return &Reply{Status: http.StatusInternalServerError}
		}
		return ok
	case strings.Contains(s, "busy"):
		if c.N == 1 {
			return &Reply{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"2"}}}
		}
		return ok
	case strings.Contains(s, "broken"):
		return &Reply{Status: http.StatusInternalServerError}
	case strings.Contains(s, "slow"):
		return &Reply{Delay: demoSlow}
	case strings.Contains(s, "hang"):
		return &Reply{Hang: true}
	case strings.Contains(s, "garbled"):
		return &Reply{Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte("<html><body>Service temporarily unavailable</body></html>")}
	case strings.Contains(s, "revoked"):
		return &Reply{Status: http.StatusForbidden}
	case strings.Contains(s, "nocredit"):
		return &Reply{Status: http.StatusPaymentRequired}
	}
	return nil
}
