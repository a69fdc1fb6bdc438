package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/results"
)

// Round trips to Redis are most of what a task costs the worker and Redis
// beyond asynq's own (docs/benchmarks.md). When Refresh.Redis is set, the
// handler batches the calls that need no answer from each other:
//
//   - before the request: the ledger's Begin, the result index read and,
//     for a provider with no budget and no daily cap, a read of the
//     cooldown and the breaker, so Acquire is skipped when neither applies;
//   - after a successful request: the breaker's Report and the Publish.
//
// Without Redis each call is its own round trip, as before; the outcome is
// the same either way.

// begin reads the task's ledger record and whether its run already has a
// result.
func (h *Refresh) begin(ctx context.Context, r *run) (ledger.State, int, results.Status, error) {
	if h.Redis == nil {
		st, err := h.Ledger.Begin(ctx, r.id, h.Now())
		if err != nil {
			return st, 0, "", err
		}
		run, status, err := h.Publisher.Published(ctx, r.id)
		return st, run, status, err
	}
	pipe := h.Redis.Pipeline()
	begin := h.Ledger.BeginPipelined(ctx, pipe, r.id, h.Now())
	published := h.Publisher.PublishedPipelined(ctx, pipe, r.id)
	var clear func() (bool, error)
	if up, ok := h.Upstreams[r.ref.Provider]; ok && up.Call != nil && len(up.Budget) == 0 && up.DailyCap <= 0 {
		clear = h.Limiter.ClearPipelined(ctx, pipe, up.Key)
	}
	_, _ = pipe.Exec(ctx) // each command's error is read from it below
	st, err := begin()
	if err != nil {
		return st, 0, "", err
	}
	run, status, err := published()
	if err != nil {
		return st, 0, "", err
	}
	if clear != nil {
		// An error here only costs the shortcut: Acquire decides.
		r.clear, _ = clear()
	}
	return st, run, status, nil
}

// succeedBatched is the success path with the breaker's Report and the
// Publish in one round trip.
func (h *Refresh) succeedBatched(ctx context.Context, r *run, up Upstream, o outcome, reply Reply, probe bool, took time.Duration, log *slog.Logger) error {
	if rl := reply.RateLimit; rl.Known {
		// Observe only writes when the quota runs low, so it rarely costs
		// a round trip of its own.
		if err := h.Limiter.Observe(ctx, up.Key, rl.Limit, rl.Used, rl.Remaining, rl.WindowSeconds); err != nil {
			log.Warn("could not update the fleet's rate limit state", "err", err)
		}
	}
	e := h.entry(r, results.StatusSucceeded)
	e.HTTPStatus = reply.Status
	e.Result = string(reply.Body)
	fault(faultBeforePublish)
	pipe := h.Redis.Pipeline()
	report := h.Limiter.ReportPipelined(ctx, pipe, up.Key, o.upstreamUp, probe)
	publish := h.Publisher.PublishPipelined(ctx, pipe, e, r.state.Run)
	_, _ = pipe.Exec(ctx)
	if err := report(); err != nil {
		log.Warn("could not update the fleet's rate limit state", "err", err)
	}
	log.Debug("refreshed", "http_status", o.status, "took", took)
	id, added, err := publish()
	if err != nil {
		return h.redisTrouble(r, err)
	}
	fault(faultAfterPublish)
	h.published(r, e, id, added)
	return nil
}
