package ratelimit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Pipelined forms of the limiter's calls, for a caller that batches them
// with other commands into one round trip. Each queues its commands on
// pipe and returns a function to call after pipe.Exec for the result.

// ClearPipelined queues a read of key's cooldown and of its provider's
// breaker. After Exec, the returned function reports true when no cooldown
// is set and the breaker is closed. For a key with no budget windows and no
// daily cap, that is when Acquire would admit the request: such a caller
// may then send without Acquire, saving a script per request. The request
// is then not counted in DailyUsed, which matters only with a daily cap.
// It reads, never writes: a false answer means "ask Acquire", which
// decides (and may make this request the breaker's half-open probe).
func (l *Limiter) ClearPipelined(ctx context.Context, pipe redis.Pipeliner, key Key) func() (bool, error) {
	if err := key.validate(); err != nil {
		return func() (bool, error) { return false, err }
	}
	// The cooldown key expires when the pause ends (SET ... PX), and a
	// breaker has open_until only while open or half open.
	cd := pipe.Exists(ctx, l.cooldownKey(key))
	br := pipe.HExists(ctx, l.breakerKey(key), "open_until")
	return func() (bool, error) {
		n, err := cd.Result()
		if err != nil {
			return false, fmt.Errorf("ratelimit clear: %w", err)
		}
		open, err := br.Result()
		if err != nil {
			return false, fmt.Errorf("ratelimit clear: %w", err)
		}
		return n == 0 && !open, nil
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
