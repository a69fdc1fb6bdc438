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

// CooldownPipelined is Cooldown queued on pipe. Where Redis does not know
// the script it was not run, and the returned function runs Cooldown on
// its own.
func (l *Limiter) CooldownPipelined(ctx context.Context, pipe redis.Pipeliner, key Key, wait time.Duration) func() (time.Duration, error) {
	if err := key.validate(); err != nil {
		return func() (time.Duration, error) { return 0, err }
	}
	wait = max(wait, 0)
	cmd := cooldownScript.EvalSha(ctx, pipe, []string{l.cooldownKey(key), l.backoffKey(key)}, l.cooldownArgs(wait)...)
	return func() (time.Duration, error) {
		n, err := cmd.Int64()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return l.cooldown(ctx, key, wait)
		}
		if err != nil {
			return 0, fmt.Errorf("ratelimit cooldown: %w", err)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
}

// ObservePipelined is Observe queued on pipe: it queues nothing unless the
// quota fields call for a pause.
func (l *Limiter) ObservePipelined(ctx context.Context, pipe redis.Pipeliner, key Key, limit, used, remaining, windowSeconds int) func() error {
	pause := observePause(limit, used, remaining, windowSeconds)
	if pause <= 0 {
		return func() error { return key.validate() }
	}
	got := l.CooldownPipelined(ctx, pipe, key, pause)
	return func() error {
		if _, err := got(); err != nil {
			return fmt.Errorf("ratelimit observe: %w", err)
		}
		return nil
	}
}

// ReportPipelined is Report queued on pipe. Where Redis does not know the
// script (after a restart or SCRIPT FLUSH) it was not run, and the returned
// function runs Report on its own.
func (l *Limiter) ReportPipelined(ctx context.Context, pipe redis.Pipeliner, key Key, ok bool, probe bool) func() error {
	if err := key.validate(); err != nil {
		return func() error { return err }
	}
	cmd := reportScript.EvalSha(ctx, pipe,
		[]string{l.breakerKey(key), l.backoffKey(key)},
		l.now(), flag(ok), flag(probe), l.opt.BreakerThreshold,
		ms(l.opt.BreakerOpenFor), ms(max(maxBreakerOpen, l.opt.BreakerOpenFor)), ms(breakerTTL))
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
