package retry

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// Each delay lies in [RETRY_INITIAL·2ⁿ⁻¹, 1.5·that], capped at
// RETRY_MAX_INTERVAL: never sooner than the nominal curve.
func TestDelayStaysWithinPolicy(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 10 * time.Second}
	tests := []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, time.Second, 1500 * time.Millisecond},
		{2, 2 * time.Second, 3 * time.Second},
		{3, 4 * time.Second, 6 * time.Second},
		{4, 8 * time.Second, 10 * time.Second},
		{5, 10 * time.Second, 10 * time.Second},
		{20, 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			if d := p.Delay(tt.n); d < tt.lo || d > tt.hi {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", tt.n, d, tt.lo, tt.hi)
			}
		}
	}
}

func TestRoundUpNeverEarly(t *testing.T) {
	tests := []struct {
		now  time.Time
		d    time.Duration
		want time.Duration
	}{
		{time.Unix(10, 700e6), 2 * time.Second, 2300 * time.Millisecond},
		{time.Unix(10, 0), 2 * time.Second, 2 * time.Second},
		{time.Unix(10, 1), 0, 999999999},
	}
	for _, tt := range tests {
		got := RoundUp(tt.now, tt.d)
		if got != tt.want {
			t.Errorf("RoundUp(%v, %s) = %s, want %s", tt.now, tt.d, got, tt.want)
		}
		// asynq truncates to whole seconds: the stored time is never early.
		if at := tt.now.Add(got).Unix(); time.Unix(at, 0).Before(tt.now.Add(tt.d)) {
			t.Errorf("stored second %d is before %v", at, tt.now.Add(tt.d))
		}
	}
}

func TestIsFailureOnlyForFailedTries(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&LaterError{After: time.Second, Failure: true, Reason: "upstream 500"}, true},
		{fmt.Errorf("wrapped: %w", &LaterError{Failure: true}), true},
		{&LaterError{After: time.Second, Reason: "429"}, false},
		{asynq.ErrLeaseExpired, false},
		{errors.New("panic"), false},
	}
	for _, tt := range tests {
		if got := IsFailure(tt.err); got != tt.want {
			t.Errorf("IsFailure(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestFinalRoundTrip(t *testing.T) {
	err := Final(3, "upstream answered 404")
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("Final does not wrap SkipRetry: %v", err)
	}
	run, ok := FinalRun(err.Error())
	if !ok || run != 3 {
		t.Fatalf("FinalRun(%q) = %d, %v; want 3, true", err.Error(), run, ok)
	}
	if _, ok := FinalRun(asynq.ErrLeaseExpired.Error()); ok {
		t.Fatal("FinalRun accepted a lease-expired error")
	}
}

func TestDelayFuncHonoursLater(t *testing.T) {
	f := DelayFunc(time.Second)
	d := f(0, &LaterError{After: 2 * time.Second}, nil)
	if d < 2*time.Second || d > 3*time.Second {
		t.Errorf("delay for LaterError{2s} = %s, want in [2s, 3s]", d)
	}
	d = f(0, asynq.ErrLeaseExpired, nil)
	if d < time.Second || d > 2*time.Second {
		t.Errorf("fallback delay = %s, want in [1s, 2s]", d)
	}
}
