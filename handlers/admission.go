package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/results"
)

// Round trips to Redis are most of what a task costs the worker and Redis
// beyond asynq's own (docs/benchmarks.md). A task makes one before each
// upstream request, the quota engine's AdmitPipelined (its record, its
// result, its deadline, the key's guards, budget and waiting line, the
// attempt count), and one after it: the breaker's report with the publish,
// or with the ledger's record of a failed try. Both go through the
// handler's redisbatch.Runner, a Batcher that shares pipelines with the
// other tasks in flight.

// begin is the task's first admission call, and reads who cancelled the
// task ("" when nobody did) in the same round trip.
func (h *Refresh) begin(ctx context.Context, r *run, up *upstream) (quota.Admission, string, error) {
	var actor func() (string, bool, error)
	a, err := h.admitWith(ctx, r, up, func(pipe redis.Pipeliner) {
		actor = cancel.RecordedPipelined(ctx, pipe, r.id)
	})
	if err != nil {
		return a, "", err
	}
	who, _, err := actor()
	return a, who, err
}

// admit asks the quota engine about the task's next request, or, without
// up, only reads the task's record and result.
func (h *Refresh) admit(ctx context.Context, r *run, up *upstream) (quota.Admission, error) {
	return h.admitWith(ctx, r, up, nil)
}

// admitWith is admit with more commands (also) queued in its round trip.
func (h *Refresh) admitWith(ctx context.Context, r *run, up *upstream, also func(redis.Pipeliner)) (quota.Admission, error) {
	t := quota.Ticket{
		TaskID: r.id, Queue: r.queue, Tenant: r.ref.Tenant, Now: h.now(),
		EnqueuedAt: r.ref.EnqueuedAt, TaskDeadline: h.taskDeadline, Deadline: r.ref.Deadline,
	}
	if up != nil {
		t.Request = &quota.Request{Key: up.Key, Budget: up.Budget, DailyCap: up.DailyCap}
	}
	var got func() (quota.Admission, error)
	err := h.redis.Do(ctx, func(pipe redis.Pipeliner) {
		got = h.quota.AdmitPipelined(ctx, pipe, t)
		if also != nil {
			also(pipe)
		}
	})
	if err != nil {
		return quota.Admission{}, err
	}
	a, err := got()
	if err != nil {
		return a, err
	}
	if a.Verdict == quota.Admitted {
		h.metrics.Granted(up.Provider, r.queue)
	}
	return a, nil
}

// settle is the one round trip after a request: the limiter learns what
// the upstream said (a 429's cooldown, the quota a 200 reported, the
// breaker's report), together with the task's result when e is set, or
// else with the ledger's record of the try.
func (h *Refresh) settle(ctx context.Context, r *run, up upstream, o outcome, reply clients.Response, probe bool, e *results.Entry) (published func() (string, bool, error), err error) {
	var after []func() error
	err = h.redis.Do(ctx, func(pipe redis.Pipeliner) {
		after = after[:0]
		if o.limited {
			wait := time.Duration(0)
			if o.hinted {
				wait = o.retryAfter
			}
			cd := h.limiter.CooldownPipelined(ctx, pipe, up.Key, wait)
			after = append(after, func() error { _, err := cd(); return err })
		}
		after = append(after, h.observeQuota(ctx, pipe, up, reply, r.log))
		after = append(after, h.limiter.ReportPipelined(ctx, pipe, up.Key, o.upstreamUp, probe))
		if e != nil {
			published = h.publisher.PublishPipelined(ctx, pipe, *e, r.state.Run, h.doneWith(r, *e)...)
			return
		}
		record := h.ledger.RecordPipelined(ctx, pipe, r.id, ledger.Outcome{HTTPStatus: o.status, RateLimited: o.limited, Kind: string(o.kind), Error: o.msg})
		published = func() (string, bool, error) { return "", false, record() }
	})
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range after {
		errs = append(errs, f())
	}
	if err := errors.Join(errs...); err != nil {
		// The limiter's state is advice for the fleet; the task's own
		// outcome does not depend on it.
		r.log.Warn("could not update the fleet's rate limit state", "err", err)
	}
	return published, nil
}

// publishEntry publishes e for the task's run.
func (h *Refresh) publishEntry(ctx context.Context, r *run, e results.Entry) (id string, added bool, err error) {
	ctx, span := h.startPublish(ctx, e)
	defer func() { endPublish(span, added, err) }()
	var got func() (string, bool, error)
	if err := h.redis.Do(ctx, func(pipe redis.Pipeliner) {
		got = h.publisher.PublishPipelined(ctx, pipe, e, r.state.Run, h.doneWith(r, e)...)
	}); err != nil {
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
	return append(done, h.ledger.Key(r.id))
}
