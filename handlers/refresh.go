package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Refresh runs both refresh task types (and ends any other type found on
// refreshq's queues with an unknown_task_type result). Build one with New;
// it is safe for concurrent use, and Close releases it.
type Refresh struct {
	ledger    *ledger.Ledger
	publisher *results.Publisher
	limiter   *ratelimit.Limiter
	// quota admits each upstream request (admission.go).
	quota *quota.Engine
	// redis sends the handler's calls: a redisbatch.Batcher shares
	// pipelines with the other tasks in flight, redisbatch.Direct does not.
	redis redisbatch.Runner
	// inspector tells an operator's re-run of an archived task from a
	// redelivery of a run that already ended.
	inspector *asynq.Inspector
	metrics   *metrics.Metrics // nil: no metrics
	logger    *slog.Logger

	upstreams    map[string]upstream // by provider id
	policy       retry.Policy
	maxRetries   int
	taskDeadline time.Duration
	// retryAfterMax bounds how long one upstream hint (a Retry-After, or
	// a quota read from a response) pauses an API key and the task that
	// got it (RETRY_AFTER_MAX).
	retryAfterMax time.Duration
	// inlineWait: a wait for the budget, or a backoff between tries, up to
	// this long is slept inside the handler; longer ones hand the task
	// back to asynq, so a worker slot is never held for long.
	inlineWait time.Duration
	worker     string // written in each result
	now        func() time.Time
	// tracing makes the spans of each run (tracing.go); nil makes none.
	tracing trace.Tracer
	// cancels ends cancelled tasks (cancelled.go): a task whose cancel
	// record exists as it begins, or appears while it runs, ends with a
	// cancelled result.
	cancels *cancel.Watcher

	rdb    redis.UniversalClient // the Redis asynq uses
	queues []string              // the queues the sweeper watches
	// mounted: the handler shares a ServeMux with other task types, so
	// archived tasks of those are not refreshq's to sweep.
	mounted bool
	closers []func() error
}

// run is one handler invocation's working state.
type run struct {
	id, queue string
	task      *asynq.Task
	ref       tasks.Refresh
	state     ledger.State
	log       *slog.Logger
	deadline  time.Time
	enqueued  time.Time
	// next is the admission of the next request, when already asked.
	next *quota.Admission
	// counted: an admission counted a request that was not sent yet.
	counted bool
	// span is the run's span; ended is the result the run published.
	span  trace.Span
	ended *results.Entry
}

// taskLog is the logger for every line about the task: its id, type,
// queue, run, and the upstream request it is on (0 before the first).
// Built whole each time rather than chained, as slog's With copies.
func (h *Refresh) taskLog(r *run) *slog.Logger {
	return h.logger.With("task_id", r.id, "type", r.task.Type(), "queue", r.queue, "run", r.state.Run, "attempt", r.state.Attempts)
}

// ProcessTask implements asynq.Handler.
func (h *Refresh) ProcessTask(ctx context.Context, t *asynq.Task) error {
	err := h.runTask(ctx, t)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return &interruptedError{err: err}
	}
	return err
}

// interruptedError is a run cut short by the worker stopping or asynq's
// task timeout: the task goes back to asynq, and the try is no failure.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string { return e.err.Error() }
func (e *interruptedError) Unwrap() error { return e.err }

// runTask watches for the task's cancel while it runs.
func (h *Refresh) runTask(ctx context.Context, t *asynq.Task) error {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	r := &run{id: id, queue: queue, task: t}
	runCtx, stop := h.cancels.Watch(ctx, id)
	defer stop()
	err := h.process(runCtx, r)
	if runCtx.Err() != nil {
		err = h.interrupted(ctx, r, err)
	}
	h.endTask(r, err)
	return err
}

// process runs the task to its result or hands it back to asynq.
func (h *Refresh) process(ctx context.Context, r *run) error {
	id, t := r.id, r.task
	ref, parseErr := tasks.Parse(t.Type(), t.Payload())
	r.ref = ref
	ctx = h.startTask(ctx, r)
	up, upOK := h.upstreams[ref.Provider]
	upOK = upOK && up.Call != nil
	var ask *upstream
	if parseErr == nil && upOK {
		ask = &up
	}

	// At-least-once delivery: the run may already have its result.
	a, canceller, err := h.begin(ctx, r, ask)
	if err != nil {
		return h.redisTrouble(r, err)
	}
	r.state = a.State
	r.log = h.taskLog(r)
	if a.Verdict == quota.Published {
		// A run the sweeper ended was archived without a handler, so this
		// delivery is an operator's re-run whatever its last error says.
		if r.state.SweptRun < r.state.Run && !h.rerunFromArchive(ctx, r) {
			h.metrics.ResultDuplicateSuppressed()
			r.log.Info("task already has its result; ending it again without a second one", "status", string(a.PublishedStatus))
			if a.PublishedStatus == results.StatusSucceeded {
				return nil
			}
			return retry.Final(r.state.Run, "redelivered after its result was published")
		}
		if r.state, err = h.ledger.NextRun(ctx, id, r.state.Run, h.now()); err != nil {
			return h.redisTrouble(r, err)
		}
		r.log = h.taskLog(r)
		r.log.Info("operator re-ran the task from the archive: a new run")
		// A cancel recorded for the run that ended is not this run's.
		canceller = ""
	} else if ask != nil {
		r.next = &a
		r.counted = a.Verdict == quota.Admitted
	}
	r.enqueued, r.deadline = h.window(r)
	if canceller != "" {
		return h.cancelledAtBegin(ctx, r, canceller)
	}

	if parseErr != nil {
		kind, msg := payloadFailure(parseErr)
		return h.fail(ctx, r, outcome{kind: kind, msg: msg})
	}
	if !upOK {
		return h.fail(ctx, r, outcome{kind: results.KindAuth, msg: fmt.Sprintf("%s is not configured: set %s on the workers", ref.Provider, keyVar(up, ref.Provider))})
	}
	return h.attemptUntilOutcome(ctx, r, up)
}

// payloadFailure is the error kind and message of a task whose payload
// tasks.Parse refused: a type refreshq does not handle, or a bad payload.
func payloadFailure(parseErr error) (results.ErrorKind, string) {
	var unknown *tasks.UnknownTypeError
	if errors.As(parseErr, &unknown) {
		return results.KindUnknownTaskType, parseErr.Error() + "; move it to a queue refreshq does not serve, or delete it"
	}
	return results.KindInvalidPayload, "invalid payload: " + parseErr.Error()
}

func keyVar(up upstream, provider string) string {
	if up.KeyVar != "" {
		return up.KeyVar
	}
	return provider + " API key"
}

// window returns when the task counts as enqueued and when it must end.
// An operator's re-run gets a fresh TASK_DEADLINE from when it started.
// A producer's enqueued_at is clamped as ledger.State.EnqueuedAt says.
func (h *Refresh) window(r *run) (enqueued, deadline time.Time) {
	enqueued = r.state.EnqueuedAt(r.ref.EnqueuedAt, time.Time{})
	start := enqueued
	if r.state.Run > 1 {
		start = r.state.RunStarted
	}
	deadline = start.Add(h.taskDeadline)
	if r.state.Run == 1 && !r.ref.Deadline.IsZero() && r.ref.Deadline.Before(deadline) {
		deadline = r.ref.Deadline
	}
	return enqueued, deadline
}

// rerunFromArchive reports whether this delivery of a task whose run
// already has a result is an operator's re-run of the archived task. asynq
// leaves a re-run task's message as it was, but the error it was archived
// with is the handler's retry.Final for that run; a redelivery after a
// crash or a shutdown carries another error.
func (h *Refresh) rerunFromArchive(ctx context.Context, r *run) bool {
	info, err := h.inspector.GetTaskInfo(r.queue, r.id)
	if err != nil {
		r.log.Warn("cannot read the task's last error; treating it as a redelivery", "err", err)
		return false
	}
	n, ok := retry.FinalRun(info.LastErr)
	return ok && n == r.state.Run
}

// errRetryNow is attempt's way of saying it has waited out a short backoff
// in place and the next attempt should follow at once.
var errRetryNow = errors.New("retry now")

// attemptUntilOutcome makes attempts until an outcome ends the run or
// hands it back to asynq.
func (h *Refresh) attemptUntilOutcome(ctx context.Context, r *run, up upstream) error {
	for {
		if err := h.attempt(ctx, r, up); !errors.Is(err, errRetryNow) {
			return err
		}
	}
}

// attempt waits for admission, sends one request (one attempt) and
// decides what next.
func (h *Refresh) attempt(ctx context.Context, r *run, up upstream) error {
	wait := h.startBudgetWait(ctx, up)
	defer wait.end(false)
	for {
		a := r.next
		r.next, r.counted = nil, false
		if a == nil {
			got, err := h.admit(ctx, r, &up)
			if err != nil {
				return h.redisTrouble(r, err)
			}
			a = &got
		}
		// The task's logger names its run and attempt: rebuilt only when
		// they change, not on every pass of a wait.
		relog := r.log == nil || a.State.Run != r.state.Run || a.State.Attempts != r.state.Attempts
		r.state = a.State
		if relog {
			r.log = h.taskLog(r)
		}
		switch a.Verdict {
		case quota.Admitted:
			wait.end(true)
			if h.now().Before(r.deadline) {
				return h.send(ctx, r, up, a.Probe)
			}
			// Redis's clock and ours disagree by a hair: no request is
			// sent, so the count is taken back.
			n, err := h.ledger.Uncount(ctx, r.id)
			if err != nil {
				return h.redisTrouble(r, err)
			}
			r.state.Attempts = n
			return h.fail(ctx, r, h.deadlineOutcome(r, ""))
		case quota.Expired:
			return h.fail(ctx, r, h.deadlineOutcome(r, ""))
		case quota.Published:
			// Another delivery of the run published while this one waited.
			h.metrics.ResultDuplicateSuppressed()
			r.log.Info("task got its result from another delivery while waiting", "status", string(a.PublishedStatus))
			if a.PublishedStatus == results.StatusSucceeded {
				return nil
			}
			return retry.Final(r.state.Run, "its result was published by another delivery")
		}
		wait.waited(string(a.Guard), a.Wait)
		if err := h.wait(ctx, r, up, a); err != nil {
			return err
		}
	}
}

// wait sleeps through a refusal short enough to be slept here, or hands
// the task back to asynq (a non-nil error) for a longer one.
func (h *Refresh) wait(ctx context.Context, r *run, up upstream, a *quota.Admission) error {
	h.metrics.Wait(up.Provider, r.queue, string(a.Guard), a.Wait)
	if h.now().Add(a.Wait).After(r.deadline) {
		return h.fail(ctx, r, h.deadlineOutcome(r, a.Guard))
	}
	if a.Wait <= h.inlineWait || a.InLine {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.Wait):
			return nil
		}
	}
	reason := fmt.Sprintf("waiting for %s %s", up.Provider, a.Guard)
	kind := results.KindRateLimited
	if a.Guard == quota.GuardBreaker {
		kind = results.KindServer
	}
	// Kept so that a deadline passing during waits says why.
	if err := h.ledger.Record(ctx, r.id, ledger.Outcome{Kind: string(kind), Error: reason}); err != nil {
		return h.redisTrouble(r, err)
	}
	if m, used := asynqRetriesUsed(ctx); used {
		// Handing the task back would get it archived without a
		// result (asynq checks MaxRetry before IsFailure): end it.
		return h.fail(ctx, r, outcome{kind: kind, status: r.state.LastStatus,
			msg: fmt.Sprintf("%s %s, but the task was enqueued with asynq MaxRetry %d, now used up, so it cannot wait; refreshq's producers set %d", reason, a.Wait.Round(time.Millisecond), m, tasks.DefaultMaxRetry)})
	}
	r.log.Debug("waiting for the upstream", "reason", a.Guard, "wait", a.Wait)
	return &retry.LaterError{After: a.Wait, Reason: reason}
}

// send sends the admitted request and decides what next.
func (h *Refresh) send(ctx context.Context, r *run, up upstream, probe bool) error {
	log := r.log
	start := time.Now()
	callCtx, callSpan := h.startRequest(ctx, r, up)
	reply, callErr := up.Call(callCtx, r.ref)
	took := time.Since(start)
	if callErr != nil && ctx.Err() != nil {
		callSpan.SetAttributes(AttrErrorKind.String("interrupted"))
		callSpan.End()
		// The worker is stopping, asynq's task timeout hit, or the task is
		// being cancelled: interrupted decides which, and says so.
		return ctx.Err()
	}
	o := classify(up.Provider, reply, callErr)
	endRequest(callSpan, o)
	h.metrics.UpstreamRequest(up.Provider, o.status, took)
	if o.hinted {
		o.retryAfter = h.boundHint(log, up.Provider, metrics.HintRetryAfter, o.retryAfter)
	}
	var e *results.Entry
	switch {
	case o.kind == results.KindNone:
		ok := h.entry(r, results.StatusSucceeded)
		ok.HTTPStatus = reply.StatusCode
		ok.Result = string(reply.Body)
		e = &ok
		fault(faultBeforePublish)
	case !o.transient:
		if o.status != 0 {
			r.state.LastStatus = o.status
		}
		log.Info("permanent failure", "error_kind", string(o.kind), "http_status", o.status)
		e = h.failedEntry(r, o)
		fault(faultBeforePublish)
	}
	settleCtx, publishSpan := ctx, trace.Span(nil)
	if e != nil {
		settleCtx, publishSpan = h.startPublish(ctx, *e)
	}
	published, err := h.settle(settleCtx, r, up, o, reply, probe, e)
	if err != nil {
		if publishSpan != nil {
			endPublish(publishSpan, false, err)
		}
		return h.redisTrouble(r, err)
	}
	if e != nil {
		if o.kind == results.KindNone {
			log.Debug("refreshed", "http_status", o.status, "took", took)
		}
		id, added, err := published()
		endPublish(publishSpan, added, err)
		if err != nil {
			return h.redisTrouble(r, err)
		}
		fault(faultAfterPublish)
		h.published(r, *e, id, added)
		if o.kind == results.KindNone {
			return nil
		}
		return retry.Final(r.state.Run, o.msg)
	}
	if _, _, err := published(); err != nil {
		return h.redisTrouble(r, err)
	}
	if o.limited {
		r.state.RateLimited++
	}
	if o.status != 0 {
		r.state.LastStatus = o.status
	}
	return h.later(ctx, r, up, o, log)
}

// later decides between another attempt and giving up, for a transient outcome.
func (h *Refresh) later(ctx context.Context, r *run, up upstream, o outcome, log *slog.Logger) error {
	var wait time.Duration
	failure := !o.limited
	if o.limited {
		// A 429 spends no retry; the cooldown it set holds every worker
		// back, and the next admission waits out whatever is left.
		wait = max(o.retryAfter, time.Second)
	} else {
		tries := r.state.Attempts - r.state.RateLimited - r.state.TriesBase
		if tries > h.maxRetries {
			log.Info("retries exhausted", "error_kind", string(o.kind), "tries", tries)
			o.msg = fmt.Sprintf("%s (gave up after %d tries; MAX_RETRIES=%d)", o.msg, tries, h.maxRetries)
			return h.fail(ctx, r, o)
		}
		wait = h.policy.Delay(tries)
		if o.hinted && o.retryAfter > wait {
			wait = o.retryAfter // never sooner than the upstream asked
		}
	}
	if h.now().Add(wait).After(r.deadline) {
		o.msg = fmt.Sprintf("%s (the next attempt would be after the task's deadline %s)", o.msg, r.deadline.UTC().Format(time.RFC3339))
		return h.fail(ctx, r, o)
	}
	// A short backoff is waited out here: asynq would round it up to its
	// next whole second and add its forwarding interval.
	inline := failure && wait <= h.inlineWait
	if m, used := asynqRetriesUsed(ctx); used && !inline {
		o.msg = fmt.Sprintf("%s (the task was enqueued with asynq MaxRetry %d, now used up; refreshq's producers set %d)", o.msg, m, tasks.DefaultMaxRetry)
		return h.fail(ctx, r, o)
	}
	h.metrics.Retry(up.Provider, string(o.kind))
	log.Info("will try again", "error_kind", string(o.kind), "http_status", o.status, "in", wait)
	if inline {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
			return errRetryNow
		}
	}
	return &retry.LaterError{After: wait, Failure: failure, Reason: o.msg}
}

// asynqRetriesUsed reports whether the task is at its asynq MaxRetry (and
// what that is). asynq then archives the task whatever the handler returns,
// a wait included, without a result: the handler must end it itself.
func asynqRetriesUsed(ctx context.Context) (maxRetry int, used bool) {
	n, okN := asynq.GetRetryCount(ctx)
	m, okM := asynq.GetMaxRetry(ctx)
	return m, okN && okM && n >= m
}

// deadlineOutcome is the failure of a task whose deadline passed while it
// waited: rate_limited when the wait was a 429, budget, cooldown, daily
// cap or the line; the last error's kind when it was retrying; server for
// a breaker.
func (h *Refresh) deadlineOutcome(r *run, waiting quota.Guard) outcome {
	o := outcome{kind: results.KindRateLimited, status: r.state.LastStatus}
	switch {
	case waiting == quota.GuardBreaker:
		o.kind = results.KindServer
	case waiting == "" && r.state.LastKind != "":
		o.kind = results.ErrorKind(r.state.LastKind)
	case waiting == "":
		// Never tried nor held back: it sat in the queue past its
		// deadline, which is a timeout of the task as a whole.
		o.kind = results.KindTimeout
	}
	reason := "the task's deadline passed"
	if waiting == "" && r.state.Attempts == 0 {
		reason = "the task's deadline passed before it could run (a queue backlog?)"
	}
	if waiting != "" {
		reason = fmt.Sprintf("the task's deadline %s comes before the %s wait ends", r.deadline.UTC().Format(time.RFC3339), waiting)
	}
	o.msg = reason
	if r.state.LastError != "" {
		o.msg += "; last error: " + r.state.LastError
	}
	return o
}

// fail publishes a failed result and ends the task in asynq's archive.
func (h *Refresh) fail(ctx context.Context, r *run, o outcome) error {
	if err := h.publish(ctx, r, *h.failedEntry(r, o)); err != nil {
		return err
	}
	return retry.Final(r.state.Run, o.msg)
}

func (h *Refresh) failedEntry(r *run, o outcome) *results.Entry {
	e := h.entry(r, results.StatusFailed)
	if o.status != 0 {
		e.HTTPStatus = o.status
	}
	e.ErrorKind = o.kind
	e.Error = o.msg
	return &e
}

func (h *Refresh) entry(r *run, status results.Status) results.Entry {
	meta := "{}"
	if len(r.ref.Meta) > 0 {
		meta = string(r.ref.Meta)
	}
	return results.Entry{
		TaskID:     r.id,
		TaskType:   r.task.Type(),
		Queue:      r.queue,
		Provider:   r.ref.Provider,
		Subject:    r.ref.Subject(),
		Status:     status,
		Attempts:   r.state.Attempts,
		HTTPStatus: r.state.LastStatus,
		Meta:       meta,
		EnqueuedAt: r.enqueued,
		FinishedAt: h.now(),
		Worker:     h.worker,
		TraceID:    r.ref.TraceID(),
	}
}

func (h *Refresh) publish(ctx context.Context, r *run, e results.Entry) error {
	fault(faultBeforePublish)
	id, added, err := h.publishEntry(ctx, r, e)
	if err != nil {
		return h.redisTrouble(r, err)
	}
	fault(faultAfterPublish)
	h.published(r, e, id, added)
	return nil
}

// published records a publish's outcome in metrics and the log.
func (h *Refresh) published(r *run, e results.Entry, id string, added bool) {
	if !added {
		h.metrics.ResultDuplicateSuppressed()
		r.log.Info("result was already published by another delivery", "entry", id)
		return
	}
	r.ended = &e
	h.countFinished(e)
	// Every task logs this line: typed attributes spare slog reflection
	// (a named string type is otherwise encoded through encoding/json).
	r.log.LogAttrs(context.Background(), slog.LevelInfo, "result published",
		slog.String("status", string(e.Status)), slog.String("error_kind", string(e.ErrorKind)),
		slog.Int("http_status", e.HTTPStatus), slog.Int64("duration_ms", e.DurationMS()), slog.String("entry", id))
}

// countFinished records a published result in the metrics.
func (h *Refresh) countFinished(e results.Entry) {
	h.metrics.ResultPublished(string(e.Status))
	h.metrics.TaskFinished(e.TaskType, e.Queue, string(e.Status), string(e.ErrorKind))
	h.metrics.TaskDuration(e.TaskType, e.Queue, string(e.Status), e.FinishedAt.Sub(e.EnqueuedAt))
}

// redisTrouble hands the task back to asynq for a prompt re-run when Redis
// fails under the handler: nothing is decided, so nothing is lost, and the
// exactly-once publish makes the re-run safe.
func (h *Refresh) redisTrouble(r *run, err error) error {
	log := r.log
	if log == nil { // Redis failed before the task's record was read
		log = h.logger.With("task_id", r.id, "type", r.task.Type(), "queue", r.queue)
	}
	log.Warn("redis error; the task will run again", "err", err)
	return &retry.LaterError{After: time.Second, Reason: "redis: " + err.Error()}
}
