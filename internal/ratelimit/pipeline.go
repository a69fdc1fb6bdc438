package ratelimit

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Pipelined forms of the limiter's calls, for a caller that batches them
// with other commands into one round trip. Each queues its commands on
// pipe and returns a function to call after pipe.Exec for the result.

// Hold is a key, or a field of a hash, whose presence holds requests back.
type Hold struct {
	Key   string
	Field string // "" for the key itself
}

// Holds returns what holds key's requests back as plain presence checks:
// its cooldown (a key that expires when the pause ends) and its provider's
// breaker while open or half open (the open_until field). For a key with
// no budget windows and no daily cap, Acquire admits a request exactly
// when none is present, so a caller may check them in a script of its own
// (ledger.BeginPipelined) and skip Acquire, saving a round trip per
// request. Such a request is not counted in DailyUsed, which matters only
// with a daily cap. When one is present, ask Acquire: it decides, and may
// make the request the breaker's half-open probe.
func (l *Limiter) Holds(key Key) ([]Hold, error) {
	if err := key.validate(); err != nil {
		return nil, err
	}
	return []Hold{
		{Key: l.cooldownKey(key)},
		{Key: l.breakerKey(key), Field: "open_until"},
	}, nil
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
