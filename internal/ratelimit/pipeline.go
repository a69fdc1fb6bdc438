package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipelined forms of the limiter's calls, for a caller that batches them
// with other commands into one round trip. Each queues its commands on
// pipe and returns a function to call after pipe.Exec for the result.

// CooldownPipelined pauses key for the whole fleet, after a 429. With
// wait > 0 (the upstream's Retry-After or reset hint) the pause lasts that
// long; with wait == 0 it backs off exponentially per key, 1s, 2s, 4s...
// up to 5m, until Report(ok) after the pause ends resets it. 429s that
// land during that pause (the rest of the same burst) do not escalate it
// further. A pause is never shortened. The returned function says how long
// the key is now paused.
//
// Where Redis does not know the script it was not run, and the returned
// function runs it on its own. The returned function also records the
// pause's cause for Status, in a round trip of its own: pauses are rare,
// and the cause is only for people.
func (l *Limiter) CooldownPipelined(ctx context.Context, pipe redis.Pipeliner, key Key, wait time.Duration) func() (time.Duration, error) {
	wait = max(wait, 0)
	cause := CauseBackoff
	if wait > 0 {
		cause = CauseRetryAfter + ": " + wait.String()
	}
	return l.cooldownPipelined(ctx, pipe, key, wait, cause)
}

func (l *Limiter) cooldownPipelined(ctx context.Context, pipe redis.Pipeliner, key Key, wait time.Duration, cause string) func() (time.Duration, error) {
	if err := key.validate(); err != nil {
		return func() (time.Duration, error) { return 0, err }
	}
	cmd := cooldownScript.EvalSha(ctx, pipe, []string{l.cooldownKey(key), l.backoffKey(key)}, l.cooldownArgs(wait)...)
	return func() (time.Duration, error) {
		n, err := cmd.Int64()
		paused := time.Duration(n) * time.Millisecond
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			paused, err = l.cooldown(ctx, key, wait)
		}
		if err != nil {
			return 0, fmt.Errorf("ratelimit cooldown: %w", err)
		}
		l.noteCause(ctx, key, cause, paused)
		return paused, nil
	}
}

// ObservePipelined pauses key for the fleet as q.Pause says, but for at
// most maxPause (RETRY_AFTER_MAX; <= 0 means DefaultHintMax), so one odd
// response cannot stop a provider for long. It queues nothing unless q
// calls for a pause. The returned function gives the pause q asked for,
// before that cap, so the caller can tell a capped hint; or a *QuotaError
// when q's fields contradict each other (nothing is paused).
func (l *Limiter) ObservePipelined(ctx context.Context, pipe redis.Pipeliner, key Key, q Quota, maxPause time.Duration) func() (time.Duration, error) {
	if err := key.validate(); err != nil {
		return func() (time.Duration, error) { return 0, err }
	}
	asked, err := q.Pause()
	if err != nil || asked <= 0 {
		return func() (time.Duration, error) { return asked, err }
	}
	if maxPause <= 0 {
		maxPause = DefaultHintMax
	}
	got := l.cooldownPipelined(ctx, pipe, key, min(asked, maxPause),
		fmt.Sprintf("%s: %d of %d left in %ds", CauseQuota, q.Remaining, q.Limit, q.WindowSeconds))
	return func() (time.Duration, error) {
		if _, err := got(); err != nil {
			return asked, fmt.Errorf("ratelimit observe: %w", err)
		}
		return asked, nil
	}
}

// ReportPipelined is Report queued on pipe. Where Redis does not know the
// script (after a restart or SCRIPT FLUSH) it was not run, and the returned
// function runs Report on its own.
func (l *Limiter) ReportPipelined(ctx context.Context, pipe redis.Pipeliner, key Key, ok bool, probe bool) func() error {
	if err := key.validate(); err != nil {
		return func() error { return err }
	}
	cmd := reportScript.EvalSha(ctx, pipe, l.reportKeys(key), l.reportArgs(ok, probe)...)
	return func() error {
		err := cmd.Err()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return l.Report(ctx, key, ok, probe)
		}
		if err != nil {
			return fmt.Errorf("ratelimit report: %w", err)
		}
		return nil
	}
}
