package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/results"
)

// Round trips to Redis are most of what a task costs the worker and Redis
// beyond asynq's own (docs/benchmarks.md). When Refresh.Batch is set, the
// handler's calls go out in pipelines shared with the other tasks in
// flight, and a task in the common case makes two:
//
//   - before the request: the ledger's Begin, which also sees whether the
//     task has a result index (only then is it read, in a round trip of
//     its own) and counts the attempt unless a cooldown, an open breaker
//     or that index holds it back (for a provider with no budget and no
//     daily cap, where that is all Acquire would check);
//   - after a successful request: the breaker's Report and the Publish.
//
// Without Batch each call is its own round trip, as before; the outcome is
// the same either way.

// begin reads the task's ledger record, whether its run already has a
// result, and who cancelled it ("" when nobody did). With count, it also
// counts the request about to be sent unless something holds it back,
// and sets r.counted when it did.
func (h *Refresh) begin(ctx context.Context, r *run, count bool, up Upstream) (ledger.State, int, results.Status, string, error) {
	st, run, status, err := h.beginRun(ctx, r, count, up)
	if err != nil {
		return st, run, status, "", err
	}
	actor, err := h.cancelRecord(ctx, r)
	return st, run, status, actor, err
}

// beginRun is begin without the cancel record.
func (h *Refresh) beginRun(ctx context.Context, r *run, count bool, up Upstream) (ledger.State, int, results.Status, error) {
	if h.Batch == nil {
		st, err := h.Ledger.Begin(ctx, r.id, h.Now())
		if err != nil {
			return st, 0, "", err
		}
		run, status, err := h.Publisher.Published(ctx, r.id)
		return st, run, status, err
	}
	// The result index comes first: when it is present the task has
	// results to read, and nothing is counted.
	guards := make([]ledger.Guard, 1, 3)
	guards[0] = ledger.Guard{Key: results.IndexKey(h.Publisher.Stream(), r.id)}
	if count {
		holds, err := h.Limiter.Holds(up.Key)
		count = err == nil // without them, Acquire decides
		for _, hold := range holds {
			guards = append(guards, ledger.Guard(hold))
		}
	}
	var begin func() (ledger.Began, error)
	err := h.Batch.Do(ctx, func(pipe redis.Pipeliner) {
		begin = h.Ledger.BeginPipelined(ctx, pipe, r.id, h.Now(), count, guards...)
		h.queueCancelRecord(ctx, pipe, r)
	})
	if err != nil {
		return ledger.State{}, 0, "", err
	}
	b, err := begin()
	if err != nil {
		return b.State, 0, "", err
	}
	r.counted = b.Counted
	if b.Guard != 1 {
		return b.State, 0, "", nil // no result index: nothing published yet
	}
	var published func() (int, results.Status, error)
	err = h.Batch.Do(ctx, func(pipe redis.Pipeliner) {
		published = h.Publisher.PublishedPipelined(ctx, pipe, r.id)
	})
	if err != nil {
		return b.State, 0, "", err
	}
	run, status, err := published()
	return b.State, run, status, err
}

// countAttempt counts the request about to be sent.
func (h *Refresh) countAttempt(ctx context.Context, r *run) (int, error) {
	if h.Batch == nil {
		return h.Ledger.Attempt(ctx, r.id)
	}
	var got func() (int, error)
	if err := h.Batch.Do(ctx, func(pipe redis.Pipeliner) { got = h.Ledger.AttemptPipelined(ctx, pipe, r.id) }); err != nil {
		return 0, err
	}
	return got()
}

// publishEntry publishes e for the task's run, sharing a pipeline when
// batched.
func (h *Refresh) publishEntry(ctx context.Context, r *run, e results.Entry) (string, bool, error) {
	done := h.doneWith(r, e)
	if h.Batch == nil {
		return h.Publisher.Publish(ctx, e, r.state.Run, done...)
	}
	var got func() (string, bool, error)
	if err := h.Batch.Do(ctx, func(pipe redis.Pipeliner) { got = h.Publisher.PublishPipelined(ctx, pipe, e, r.state.Run, done...) }); err != nil {
		return "", false, err
	}
	return got()
}

// doneWith is what the publish of e deletes when it adds the entry: the
// task's ledger record, once its first run has succeeded. Kept for
// TASK_DEADLINE + 7 days, records would hold Redis memory for every task
// ever run. A successful task cannot be re-run from asynq's archive, and a
// redelivery of the run finds the result index and ends without a call.
// A later run's record is kept: its task was archived once, and the record
// is what tells a redelivery of that run from an operator's re-run.
//
// The task's cancel record goes too, whatever the result: a cancel that
// came too late must not end an operator's later re-run.
func (h *Refresh) doneWith(r *run, e results.Entry) []string {
	done := []string{cancel.Key(r.id)}
	if e.Status != results.StatusSucceeded || r.state.Run != 1 {
		return done
	}
	return append(done, h.Ledger.Key(r.id))
}

// succeedBatched is the success path with the breaker's Report and the
// Publish in one round trip.
func (h *Refresh) succeedBatched(ctx context.Context, r *run, up Upstream, o outcome, reply Reply, probe bool, took time.Duration, log *slog.Logger) error {
	// A quota only writes when it runs low, so it rarely costs a round
	// trip of its own.
	if err := h.observeQuota(ctx, up, reply, log); err != nil {
		log.Warn("could not update the fleet's rate limit state", "err", err)
	}
	e := h.entry(r, results.StatusSucceeded)
	e.HTTPStatus = reply.Status
	e.Result = string(reply.Body)
	fault(faultBeforePublish)
	var report func() error
	var publish func() (string, bool, error)
	err := h.Batch.Do(ctx, func(pipe redis.Pipeliner) {
		report = h.Limiter.ReportPipelined(ctx, pipe, up.Key, o.upstreamUp, probe)
		publish = h.Publisher.PublishPipelined(ctx, pipe, e, r.state.Run, h.doneWith(r, e)...)
	})
	if err != nil {
		return h.redisTrouble(r, err)
	}
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
