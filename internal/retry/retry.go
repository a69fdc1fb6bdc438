package retry

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hibiken/asynq"
)

// Policy is the exponential backoff between tries that failed with a 5xx, a
// timeout or a network error.
type Policy struct {
	Initial time.Duration // RETRY_INITIAL
	Max     time.Duration // RETRY_MAX_INTERVAL
}

// Multiplier and jitter of the curve: each delay doubles, and up to 50% is
// added at random so a fleet that failed together does not retry together.
// Jitter only adds: a retry never comes sooner than the nominal curve
// (RETRY_INITIAL·2ⁿ⁻¹), which is what an upstream and an operator reading
// RETRY_INITIAL expect.
const (
	Multiplier = 2.0
	Jitter     = 0.5
)

// Delay is the wait before try n+1 after n failed tries (n ≥ 1): the
// nominal delay d = RETRY_INITIAL·2ⁿ⁻¹ capped at RETRY_MAX_INTERVAL, plus
// a uniform [0, Jitter·d), capped again.
func (p Policy) Delay(n int) time.Duration {
	// backoff's randomization is symmetric around the interval; centring
	// it on (1+Jitter/2)·d gives [d, (1+Jitter)·d).
	const factor = Jitter / (2 + Jitter)
	b := &backoff.ExponentialBackOff{
		InitialInterval:     time.Duration(float64(p.Initial) * (1 + Jitter/2)),
		RandomizationFactor: factor,
		Multiplier:          Multiplier,
		MaxInterval:         time.Duration(float64(p.Max) * (1 + Jitter/2)),
		MaxElapsedTime:      0, // the task deadline bounds the whole, not backoff
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := p.Initial
	for i := 0; i < max(n, 1); i++ {
		d = b.NextBackOff()
	}
	// Jitter may push a delay past the cap; RETRY_MAX_INTERVAL is a promise.
	return min(d, p.Max)
}

// LaterError is what a handler returns to have its task run again after After.
// Failure says whether the try counts as a failure for asynq's own retry
// count (shown in the web UI); waits for a 429, a budget, a cooldown or the
// breaker do not.
type LaterError struct {
	After   time.Duration
	Failure bool
	Reason  string // why, for asynq's last error and the UI
}

// Error is the reason and the delay, as asynq keeps it for the UI.
func (l *LaterError) Error() string {
	return fmt.Sprintf("%s; runs again in %s", l.Reason, l.After.Round(time.Millisecond))
}

// DelayFunc is asynq's RetryDelayFunc. A *LaterError decides the delay; anything
// else (a panic in a handler, a lease lost when a worker died) is re-run
// after fallback, so a crashed task comes back promptly and its handler, not
// asynq, decides its fate.
//
// asynq stores retry times in whole Unix seconds, truncating: a 2 s delay
// asked at 10.7 s would become 12 s, 1.3 s instead of 2 s. So the delay is
// rounded up to the next whole second of the time it asks for: a task never
// runs earlier than asked (it runs within DelayedTaskCheckInterval after).
func DelayFunc(fallback time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		d := fallback
		var l *LaterError
		if errors.As(err, &l) {
			d = l.After
		}
		return RoundUp(time.Now(), d)
	}
}

// RoundUp returns the delay from now to the first whole second at or after
// now+d.
func RoundUp(now time.Time, d time.Duration) time.Duration {
	at := now.Add(d)
	sec := at.Truncate(time.Second)
	if sec.Before(at) {
		sec = sec.Add(time.Second)
	}
	return sec.Sub(now)
}

// IsFailure is asynq's IsFailure: only a *LaterError marked Failure counts.
// Everything else a handler returns before it ends a task is a wait, and a
// lost lease (a crashed worker) is not the task's failure either; the
// handler's own count in Redis is what spends MAX_RETRIES.
func IsFailure(err error) bool {
	var l *LaterError
	return errors.As(err, &l) && l.Failure
}

// finalPrefix starts the error of every task a handler ended after
// publishing its result. asynq keeps it as the archived task's last error,
// which is how a later run of the same task tells an operator's re-run from
// the archive (a new run) from a redelivery of a run already finished.
const finalPrefix = "refreshq: result published for run "

// Final is the error a handler returns for a task that failed and whose
// result is published: asynq archives it without retrying.
func Final(run int, msg string) error {
	return fmt.Errorf("%s%d: %s: %w", finalPrefix, run, msg, asynq.SkipRetry)
}

// FinalRun reads the run number back from an archived task's last error:
// ok is false when the error is not one Final made.
func FinalRun(lastErr string) (run int, ok bool) {
	rest, found := strings.CutPrefix(lastErr, finalPrefix)
	if !found {
		return 0, false
	}
	if _, err := fmt.Sscanf(rest, "%d:", &run); err != nil {
		return 0, false
	}
	return run, true
}
