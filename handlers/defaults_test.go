package handlers

import (
	"testing"

	"github.com/refreshq/refreshq/internal/ratelimit"
)

// The limiter caps a hint it is given no bound for at its own default;
// the handler always passes one, but the two must still agree, so a limiter
// used without the handler pauses a key no longer than a worker would.
func TestRetryAfterMaxIsTheLimitersDefault(t *testing.T) {
	if DefaultRetryAfterMax != ratelimit.DefaultHintMax {
		t.Errorf("DefaultRetryAfterMax = %v, ratelimit.DefaultHintMax = %v: a hint would be capped differently with and without the handler", DefaultRetryAfterMax, ratelimit.DefaultHintMax)
	}
}
