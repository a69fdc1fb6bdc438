package handlers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/ratelimit"
)

// boundHint caps a pause an upstream asked for at RetryAfterMax. A single
// response must not pause the whole fleet for a month; a capped hint is
// logged and counted, as it means the upstream and we disagree.
func (h *Refresh) boundHint(log *slog.Logger, provider, source string, d time.Duration) time.Duration {
	limit := h.retryAfterMax
	if d <= limit {
		return d
	}
	log.Warn("upstream asked for a pause longer than RETRY_AFTER_MAX; pausing for RETRY_AFTER_MAX",
		"provider", provider, "source", source, "asked", d, "retry_after_max", limit)
	h.metrics.HintCapped(provider, source)
	return limit
}

// observeQuota queues on pipe the pause a response's quota asks for when
// it runs low. Quota fields that contradict each other are an upstream's
// bug, not a reason to stop: they are logged at debug and not acted on.
func (h *Refresh) observeQuota(ctx context.Context, pipe redis.Pipeliner, up upstream, reply clients.Response, log *slog.Logger) func() error {
	rl := reply.RateLimit
	if !rl.Known {
		return func() error { return nil }
	}
	got := h.limiter.ObservePipelined(ctx, pipe, up.Key, ratelimit.Quota{Limit: rl.Limit, Used: rl.Used, Remaining: rl.Remaining, WindowSeconds: rl.WindowSeconds}, h.retryAfterMax)
	return func() error {
		asked, err := got()
		if qe, ok := errors.AsType[*ratelimit.QuotaError](err); ok {
			log.Debug("upstream quota fields contradict each other; not acted on", "provider", up.Provider, "err", qe)
			return nil
		}
		h.boundHint(log, up.Provider, metrics.HintQuota, asked)
		return err
	}
}
