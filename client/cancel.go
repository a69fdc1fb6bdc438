package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/results"
)

// DefaultCancelWait is how long Cancel waits for a running task's
// cancelled result before it reports the cancel as requested.
const DefaultCancelWait = 10 * time.Second

// WithActor names who cancels, in the error of the cancelled results this
// Client's Cancel causes ("cancelled by NAME ..."); the default is
// "client".
func WithActor(name string) Option {
	return func(s *settings) error { s.actor = name; return nil }
}

// WithCancelWait sets how long Cancel waits for a running task's cancelled
// result (DefaultCancelWait by default; 0 does not wait).
func WithCancelWait(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("cancel wait %s is negative", d)
		}
		s.cancelWait = &d
		return nil
	}
}

// CancelState is what a cancel did to one task.
type CancelState string

// The states of a CancelOutcome.
const (
	// Cancelled: the task was pending, scheduled, retrying or running, and
	// its one cancelled result is published (Result).
	Cancelled CancelState = "cancelled"
	// CancelRequested: the task is running; its cancel is recorded and its
	// worker told, and its cancelled result lands within seconds. Wait for
	// it with Wait.
	CancelRequested CancelState = "cancelling"
	// AlreadyEnded: nothing was changed (Err is an *EndedError).
	AlreadyEnded CancelState = "ended"
	// CancelFailed: the task is unknown (Err matches ErrUnknownTask) or
	// Redis failed (Err says so).
	CancelFailed CancelState = "failed"
)

// CancelOutcome is what Cancel did to one task.
type CancelOutcome struct {
	TaskID string
	State  CancelState
	// Result is the cancelled result (Cancelled) or the one that stands
	// (AlreadyEnded; zero if it expired), with its fields as the stream
	// holds them (Result.Fields).
	Result results.Entry
	Err    error
}

// ErrUnknownTask is matched (errors.Is) by the error of a task that is on
// none of the queues and has no result: never enqueued, or its result
// expired.
var ErrUnknownTask = errors.New("unknown task")

// unknownTaskError keeps the canceller's message and chain and adds
// ErrUnknownTask to what it matches.
type unknownTaskError struct{ err error }

func (e *unknownTaskError) Error() string        { return e.err.Error() }
func (e *unknownTaskError) Unwrap() error        { return e.err }
func (e *unknownTaskError) Is(target error) bool { return target == ErrUnknownTask }

// EndedError says a cancel changed nothing: the task had ended, with
// Result, before the cancel took effect.
type EndedError struct {
	TaskID string
	Result results.Entry
	// WhileCancelling: the task was running when the cancel came, and its
	// own result landed before the cancel reached it.
	WhileCancelling bool
}

// Error names the task and how it ended.
func (e *EndedError) Error() string {
	how := "had already ended"
	if e.WhileCancelling {
		how = "ended before the cancel took effect"
	}
	if e.Result.Status == "" {
		return fmt.Sprintf("task %s %s (its result has expired); nothing was changed", e.TaskID, how)
	}
	s := fmt.Sprintf("task %s %s: %s", e.TaskID, how, e.Result.Status)
	if e.Result.ErrorKind != "" {
		s += " (" + string(e.Result.ErrorKind) + ")"
	}
	return s + "; its result stands and nothing was changed"
}

// Cancel cancels tasks by id. A pending, scheduled or retrying task is
// removed and gets its one result, status failed and error_kind
// cancelled, at once. A running task gets it within seconds, whatever its
// in-flight request returns; Cancel waits for it up to WithCancelWait.
//
// It returns one outcome per id, in order, and the errors of those not
// cancelled, joined: an *EndedError for a task that had ended (nothing is
// changed), an error matching ErrUnknownTask, or a Redis failure.
func (c *Client) Cancel(ctx context.Context, ids ...string) ([]CancelOutcome, error) {
	cl := c.canceller()
	outs := make([]CancelOutcome, len(ids))
	var errs []error
	for i, id := range ids {
		o, err := cl.Cancel(ctx, id, c.actor, c.cancelWait)
		out := CancelOutcome{TaskID: id, Result: o.Result}
		switch {
		case err != nil:
			out.State, out.Err = CancelFailed, fmt.Errorf("cancel task %s in %s: %w", id, c.where, err)
			if errors.Is(err, cancel.ErrUnknown) {
				out.Err = &unknownTaskError{err}
			}
		case o.State == cancel.Cancelled:
			out.State = Cancelled
		case o.State == cancel.Requested:
			out.State = CancelRequested
		default:
			out.State = AlreadyEnded
			out.Err = &EndedError{TaskID: id, Result: o.Result, WhileCancelling: o.State == cancel.EndedFirst}
		}
		if out.Err != nil {
			errs = append(errs, out.Err)
		}
		outs[i] = out
	}
	return outs, errors.Join(errs...)
}

func (c *Client) canceller() *cancel.Canceller {
	return &cancel.Canceller{
		RDB:       c.rdb,
		Inspector: asynq.NewInspectorFromRedisClient(c.rdb),
		Queues:    c.queues,
		Publisher: results.NewPublisher(c.rdb, c.stream, 0),
		Reader:    c.reader,
		Ledger:    ledger.New(c.rdb, "", 0),
		Worker:    results.WorkerName(),
		Now:       time.Now,
	}
}
