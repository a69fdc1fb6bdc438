package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/config"
)

// trimEvery is how often a worker trims the results stream. Every worker
// does it; trimming is idempotent, so a fleet costs a few XTRIMs a minute.
const trimEvery = time.Minute

// trimResults keeps the results stream within RESULTS_MAX_LEN and
// RESULTS_MAX_AGE until ctx ends, dropping an entry a consumer group has
// not yet been delivered or acknowledged only past RESULTS_MAX_UNACKED_AGE.
func trimResults(ctx context.Context, rdb redis.UniversalClient, cfg config.Worker, log *slog.Logger) {
	if cfg.ResultsMaxLen <= 0 && cfg.ResultsMaxAge <= 0 {
		return
	}
	c, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues.Names()...), client.WithResultsStream(cfg.ResultsStream))
	if err != nil {
		log.Warn("results stream will not be trimmed", "err", err)
		return
	}
	defer c.Close()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		if n, err := c.TrimResults(ctx, cfg.ResultsMaxLen, cfg.ResultsMaxAge, client.MaxUnackedAge(cfg.ResultsMaxUnackedAge)); err != nil {
			if ctx.Err() == nil {
				log.Warn("could not trim the results stream", "err", err)
			}
		} else if n > 0 {
			log.Info("trimmed the results stream", "entries", n, "max_len", cfg.ResultsMaxLen, "max_age", cfg.ResultsMaxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
