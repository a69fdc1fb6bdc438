package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/tracectx"
	"github.com/refreshq/refreshq/tasks"
)

// EnqueueOption changes how Enqueue and EnqueueMany enqueue. An option
// given a value it cannot take makes the call fail with an *OptionError
// before anything is written.
type EnqueueOption func(*enqueueSettings) error

type enqueueSettings struct {
	queue    string
	in       time.Duration
	hasIn    bool
	at       time.Time
	unique   time.Duration
	deadline time.Time
	meta     json.RawMessage
	tenant   string
	taskID   string
	progress func(Outcome)
	// traceparent: the Traceparent option's, else the caller's context's.
	traceparent string
}

// Queue enqueues refreshes that name no queue of their own on name.
func Queue(name string) EnqueueOption {
	return func(s *enqueueSettings) error { s.queue = name; return nil }
}

// In delays the task: a worker takes it d from now.
func In(d time.Duration) EnqueueOption {
	return func(s *enqueueSettings) error {
		if d < 0 {
			return &OptionError{Problem: fmt.Sprintf("delay %s is negative", d)}
		}
		s.in, s.hasIn = d, true
		return nil
	}
}

// At schedules the task: a worker takes it at t (or at once if t is past).
func At(t time.Time) EnqueueOption {
	return func(s *enqueueSettings) error { s.at = t; return nil }
}

// Unique skips the refresh when one of the same provider and subject was
// enqueued within window, on any queue, whatever its payload otherwise
// holds and however it ended. Enqueue then returns a *DuplicateError.
// The window starts when the earlier refresh was enqueued, not when it runs.
func Unique(window time.Duration) EnqueueOption {
	return func(s *enqueueSettings) error {
		if window < time.Millisecond {
			return &OptionError{Problem: fmt.Sprintf("unique window %s is shorter than 1ms", window)}
		}
		s.unique = window
		return nil
	}
}

// Traceparent sets the W3C trace context refreshes carry to the worker
// (the payload's traceparent), for a producer whose trace is not in the
// context it passes: one that got the header from its own caller, say.
// Without it, the span of the context given to Enqueue, EnqueueMany or
// EnqueueOnce, if any, is the parent: the worker's spans continue that
// trace, and each result's trace_id names it.
func Traceparent(v string) EnqueueOption {
	return func(s *enqueueSettings) error {
		if _, ok := tasks.TraceID(v); !ok {
			return &OptionError{Problem: fmt.Sprintf("traceparent %q is not a W3C traceparent, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", v)}
		}
		s.traceparent = v
		return nil
	}
}

// Deadline ends refreshes that carry no deadline of their own failed if
// they have not ended by t; the worker's TASK_DEADLINE still applies when
// sooner.
func Deadline(t time.Time) EnqueueOption {
	return func(s *enqueueSettings) error { s.deadline = t; return nil }
}

// Meta sets the meta of refreshes that carry none of their own: a JSON
// object of at most tasks.MaxMetaBytes, copied to the result.
func Meta(m json.RawMessage) EnqueueOption {
	return func(s *enqueueSettings) error { s.meta = m; return nil }
}

// Tenant sets the tenant of refreshes that name none of their own: who
// they are for. Within one queue and API key, tenants share the budget
// round-robin.
func Tenant(name string) EnqueueOption {
	return func(s *enqueueSettings) error { s.tenant = name; return nil }
}

// TaskID gives the task this id instead of a random UUID. Enqueue fails
// with an error wrapping asynq.ErrTaskIDConflict while a task with the id
// exists. EnqueueMany does not take it.
func TaskID(id string) EnqueueOption {
	return func(s *enqueueSettings) error {
		if id == "" {
			return &OptionError{Problem: "task id is empty"}
		}
		s.taskID = id
		return nil
	}
}

// Progress has EnqueueMany call fn with each refresh's outcome as it is
// known. Calls are serialised, in completion order, not input order.
func Progress(fn func(Outcome)) EnqueueOption {
	return func(s *enqueueSettings) error { s.progress = fn; return nil }
}

// traceFrom takes the trace context from ctx unless Traceparent set one.
func (s *enqueueSettings) traceFrom(ctx context.Context) {
	if s.traceparent == "" {
		s.traceparent = tracectx.Traceparent(ctx)
	}
}

func enqueueOptions(opts []EnqueueOption) (enqueueSettings, error) {
	var s enqueueSettings
	for _, o := range opts {
		if err := o(&s); err != nil {
			return s, err
		}
	}
	if s.hasIn && !s.at.IsZero() {
		return s, &OptionError{Problem: "both In and At are set; use one"}
	}
	return s, nil
}

// OptionError is an EnqueueOption given a value it cannot take, or an
// invalid combination of them.
type OptionError struct{ Problem string }

// Error says which option is wrong.
func (e *OptionError) Error() string { return "invalid enqueue options: " + e.Problem }

// ErrDuplicate is matched (errors.Is) by every *DuplicateError.
var ErrDuplicate = errors.New("duplicate refresh")

// DuplicateError says a refresh was skipped under Unique because another of
// the same provider and subject was enqueued within the window.
type DuplicateError struct {
	Provider       string
	Subject        string
	ExistingTaskID string
}

// Error names the subject and the task it duplicates.
func (e *DuplicateError) Error() string {
	return fmt.Sprintf("duplicate: %s %s was already enqueued as task %s within the unique window; skipped", e.Provider, e.Subject, e.ExistingTaskID)
}

// Is makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// ErrInDoubt is matched (errors.Is) by every *InDoubtError.
var ErrInDoubt = errors.New("enqueue in doubt")

// InDoubtError says Redis failed while the enqueue command was in flight:
// the task may or may not have been enqueued. Look TaskID up (asynq's
// Inspector or web UI, in any queue) before enqueuing the refresh again.
type InDoubtError struct {
	TaskID string
	Err    error
}

// Error names the task that may or may not exist, and the Redis error.
func (e *InDoubtError) Error() string {
	return fmt.Sprintf("task %s may or may not have been enqueued: %v", e.TaskID, e.Err)
}

// Unwrap returns the Redis error.
func (e *InDoubtError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInDoubt) true.
func (e *InDoubtError) Is(target error) bool { return target == ErrInDoubt }

// uniqueKey is the Redis key that holds, for Unique's window, the id of the
// task last enqueued for a provider and subject. Deleting it lets the next
// refresh of that subject through.
func uniqueKey(provider, subject string) string {
	return "refreshq:unique:" + provider + ":" + subject
}

// acquireScript sets the uniqueness key unless it is set. It returns
// {1, id} when it set it, {0, holder} when it was set already: a holder
// equal to our id means an earlier try of this same enqueue (a go-redis
// retry, or a caller re-using TaskID) set it, which is not a duplicate.
//
// KEYS[1] unique key; ARGV[1] task id, ARGV[2] window (ms).
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1]}
`)

// releaseScript deletes the uniqueness key only if it still holds our id,
// so a failed enqueue never frees a later refresh's key.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Validate checks r as Enqueue would with opts: tasks.Refresh.Validate
// after filling in the options' queue, meta, deadline and tenant, and that the
// queue is one of the Client's. It returns a *tasks.ValidationError or an
// *OptionError.
func (c *Client) Validate(r tasks.Refresh, opts ...EnqueueOption) error {
	s, err := enqueueOptions(opts)
	if err != nil {
		return err
	}
	_, err = c.resolve(r, &s)
	return err
}

// resolve fills in r's defaults from s and validates the result.
func (c *Client) resolve(r tasks.Refresh, s *enqueueSettings) (tasks.Refresh, error) {
	if r.Queue == "" {
		r.Queue = s.queue
	}
	if r.Queue == "" {
		r.Queue = tasks.DefaultQueue
	}
	if string(r.Meta) == "null" {
		r.Meta = nil
	}
	if len(r.Meta) == 0 {
		r.Meta = s.meta
	}
	if r.Deadline.IsZero() {
		r.Deadline = s.deadline
	}
	if r.Tenant == "" {
		r.Tenant = s.tenant
	}
	if r.Traceparent == "" {
		r.Traceparent = s.traceparent
	}
	if err := r.Validate(); err != nil {
		return r, err
	}
	if !slices.Contains(c.queues, r.Queue) {
		return r, &tasks.ValidationError{Field: "queue", Problem: fmt.Sprintf("%q is not one of the allowed queues (%s)", r.Queue, strings.Join(c.queues, ", "))}
	}
	return r, nil
}

// Enqueue validates r and enqueues it, returning the task's id.
//
// Errors: a *tasks.ValidationError or *OptionError (nothing written); a
// *DuplicateError under Unique (nothing enqueued); an *InDoubtError when
// Redis failed mid-call — then the returned id is the task's, which may
// exist; other errors mean nothing was enqueued.
func (c *Client) Enqueue(ctx context.Context, r tasks.Refresh, opts ...EnqueueOption) (string, error) {
	s, err := enqueueOptions(opts)
	if err != nil {
		return "", err
	}
	s.traceFrom(ctx)
	r, err = c.resolve(r, &s)
	if err != nil {
		return "", err
	}
	o := c.enqueue(ctx, r, &s, time.Now())
	return o.TaskID, o.Err
}

// enqueue enqueues a validated refresh and says how it went. It never
// returns State NotEnqueued with a nil Err.
func (c *Client) enqueue(ctx context.Context, r tasks.Refresh, s *enqueueSettings, now time.Time) Outcome {
	id, generated := s.taskID, false
	if id == "" {
		id, generated = uuid.NewString(), true
	}
	task, processAt, err := c.build(r, s, now)
	if err != nil {
		return Outcome{State: NotEnqueued, Err: err}
	}
	var key string // set when this call took the uniqueness key
	if s.unique > 0 {
		k := uniqueKey(r.Provider, r.Subject())
		res, err := acquireScript.Run(ctx, c.rdb, []string{k}, id, s.unique.Milliseconds()).Slice()
		var holder string
		if err == nil && len(res) == 2 {
			holder, _ = res[1].(string)
			if res[0] == int64(1) {
				key = k
			}
		} else if err == nil {
			err = fmt.Errorf("unexpected reply %v", res)
		}
		if err != nil {
			// Nothing was enqueued. The key may have been set (the reply
			// was lost); it then names a task that does not exist until
			// the window ends.
			return Outcome{State: NotEnqueued, Err: fmt.Errorf("enqueue %s %s: check uniqueness in %s: %w", r.Provider, r.Subject(), c.where, err)}
		}
		if holder != id {
			return Outcome{State: Duplicate, Err: &DuplicateError{Provider: r.Provider, Subject: r.Subject(), ExistingTaskID: holder}}
		}
	}
	aqOpts := []asynq.Option{asynq.TaskID(id), asynq.Queue(r.Queue)}
	if !processAt.IsZero() {
		aqOpts = append(aqOpts, asynq.ProcessAt(processAt))
	}
	_, err = c.aq.EnqueueContext(ctx, task, aqOpts...)
	switch {
	case err == nil:
		return Outcome{TaskID: id, State: Enqueued}
	case errors.Is(err, asynq.ErrTaskIDConflict) && generated:
		// A fresh UUID cannot clash with another task: go-redis retried
		// our own enqueue after losing its reply, and the first one ran.
		return Outcome{TaskID: id, State: Enqueued}
	case errors.Is(err, asynq.ErrTaskIDConflict):
		if key != "" {
			_ = releaseScript.Run(context.WithoutCancel(ctx), c.rdb, []string{key}, id).Err()
		}
		return Outcome{State: NotEnqueued, Err: fmt.Errorf("enqueue %s %s: task id %s: %w", r.Provider, r.Subject(), id, err)}
	default:
		// The script may have run before the connection failed. The
		// uniqueness key stays: it then names a task that may exist, which
		// is what a later duplicate check should see.
		return Outcome{TaskID: id, State: InDoubt, Err: &InDoubtError{TaskID: id, Err: fmt.Errorf("enqueue %s %s in %s: %w", r.Provider, r.Subject(), c.where, err)}}
	}
}

// build makes the asynq task. enqueued_at is when the task becomes due:
// the worker measures TASK_DEADLINE from it, so a delayed task must not
// start its life already late.
func (c *Client) build(r tasks.Refresh, s *enqueueSettings, now time.Time) (*asynq.Task, time.Time, error) {
	var processAt time.Time
	switch {
	case s.hasIn && s.in > 0:
		processAt = now.Add(s.in)
	case !s.at.IsZero() && s.at.After(now):
		processAt = s.at
	}
	due := now
	if !processAt.IsZero() {
		due = processAt
	}
	r.EnqueuedAt = due.UTC()
	task, err := tasks.NewTask(r)
	return task, processAt, err
}
