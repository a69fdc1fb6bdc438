package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/results"
)

// trimEvery is how often a worker trims the results stream. Every worker
// does it; trimming is idempotent, so a fleet costs a few XTRIMs a minute.
const trimEvery = time.Minute

// trimResults keeps the results stream within RESULTS_MAX_LEN and
// RESULTS_MAX_AGE until ctx ends, dropping an entry a consumer group has
// not yet been delivered or acknowledged only past RESULTS_MAX_UNACKED_AGE.
func trimResults(ctx context.Context, rdb redis.UniversalClient, cfg config.Worker, log *slog.Logger) {
	keep := results.Retention{MaxLen: cfg.ResultsMaxLen, MaxAge: cfg.ResultsMaxAge, MaxUnackedAge: cfg.ResultsMaxUnackedAge}
	if keep.MaxLen <= 0 && keep.MaxAge <= 0 {
		return
	}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		if n, err := results.Trim(ctx, rdb, cfg.ResultsStream, keep); err != nil {
			if ctx.Err() == nil {
				log.Warn("could not trim the results stream", "err", err)
			}
		} else if n > 0 {
			log.Info("trimmed the results stream", "entries", n, "max_len", keep.MaxLen, "max_age", keep.MaxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
