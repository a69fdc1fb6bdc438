package cancel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// State is what a cancel did.
type State int

// The states of an Outcome.
const (
	// Cancelled: the task's cancelled result is published (Result).
	Cancelled State = iota + 1
	// Requested: the task is running; its record is written and its worker
	// told, and its cancelled result follows within seconds.
	Requested
	// Ended: the task had already ended; Result is the result that stands
	// (zero when it expired).
	Ended
	// EndedFirst: the task was running and ended on its own before the
	// cancel took effect; Result is its own result, which stands.
	EndedFirst
)

// String is the state as messages and the HTTP API name it.
func (s State) String() string {
	switch s {
	case Cancelled:
		return "cancelled"
	case Requested:
		return "cancelling"
	case Ended:
		return "ended"
	case EndedFirst:
		return "ended_first"
	}
	return "unknown"
}

// Outcome is what one cancel did.
type Outcome struct {
	TaskID string
	State  State
	// Result is the cancelled result (Cancelled) or the one that stands
	// (Ended, EndedFirst), with its fields as the stream holds them.
	Result results.Entry
}

// ErrUnknown is returned for a task id that is on none of the queues and
// has no result: never enqueued, or its result expired.
var ErrUnknown = errors.New("unknown task")

// Canceller cancels tasks. Its fields must all be set.
type Canceller struct {
	RDB       redis.UniversalClient
	Inspector *asynq.Inspector
	// Queues are searched for the task, in order.
	Queues    []string
	Publisher *results.Publisher
	Reader    *results.Reader
	// Ledger is the workers' task records, read for the attempts a
	// cancelled result reports.
	Ledger *ledger.Ledger
	// Worker is written in the worker field of a result the canceller
	// publishes itself (host:pid of this process).
	Worker string
	Now    func() time.Time
}

// maxMoves bounds how often a cancel follows a task that changed state
// under it (pending to active, say) before it gives up.
const maxMoves = 5

// Cancel cancels one task on behalf of actor. A waiting task is removed and
// its cancelled result published at once. For a running one it writes the
// record, tells the worker through asynq, and waits up to wait for the
// result that lands (Cancelled, or EndedFirst when the task's own came
// first); when none lands in time the outcome is Requested. It returns
// ErrUnknown for a task it cannot find.
func (c *Canceller) Cancel(ctx context.Context, taskID, actor string, wait time.Duration) (Outcome, error) {
	if taskID == "" {
		return Outcome{}, fmt.Errorf("cancel: task id is empty")
	}
	for range maxMoves {
		info, err := c.find(ctx, taskID)
		if err != nil {
			return Outcome{}, err
		}
		if info == nil {
			return c.ended(ctx, taskID)
		}
		if info.State == asynq.TaskStateActive {
			return c.cancelRunning(ctx, info, actor, wait)
		}
		if info.State == asynq.TaskStateCompleted {
			return c.ended(ctx, taskID)
		}
		st, _, err := c.Ledger.Peek(ctx, taskID)
		if err != nil {
			return Outcome{}, err
		}
		published, _, err := c.Publisher.Published(ctx, taskID)
		if err != nil {
			return Outcome{}, err
		}
		run, ended := currentRun(info, st, published)
		if ended {
			// A redelivery of a run that has its result (the worker died
			// before acknowledging it), or an archived task that ended:
			// the next delivery, if any, ends it without a second result.
			return c.ended(ctx, taskID)
		}
		if err := Request(ctx, c.RDB, taskID, actor); err != nil {
			return Outcome{}, err
		}
		err = c.Inspector.DeleteTask(info.Queue, taskID)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue // it moved on (ran, or was deleted): look again
		}
		if err != nil {
			// asynq refuses to delete an active task: a worker took it
			// meanwhile, and the record written above reaches it.
			if now, ferr := c.find(ctx, taskID); ferr == nil && now != nil && now.State == asynq.TaskStateActive {
				return c.cancelRunning(ctx, now, actor, wait)
			}
			return Outcome{}, fmt.Errorf("cancel task %s: remove it from queue %s: %w", taskID, info.Queue, err)
		}
		return c.publish(ctx, info, st, run, actor)
	}
	return Outcome{}, fmt.Errorf("cancel task %s: it kept changing state; try again", taskID)
}

// currentRun is the run a cancel of a waiting task ends, and whether that
// task has in fact ended. A run with a result has ended, unless the task
// waits again because an operator re-ran it from the archive (its last
// error is the handler's final one for that run, or the sweeper ended it):
// then the cancel ends the next run.
func currentRun(info *asynq.TaskInfo, st ledger.State, published int) (run int, ended bool) {
	run = max(st.Run, 1)
	if published < run {
		return run, false
	}
	if info.State == asynq.TaskStateArchived {
		return run, true
	}
	if n, ok := retry.FinalRun(info.LastErr); ok && n >= run || st.SweptRun >= run {
		return run + 1, false
	}
	return run, true
}

// find returns the task as asynq holds it on the first queue that has it,
// or nil.
func (c *Canceller) find(ctx context.Context, taskID string) (*asynq.TaskInfo, error) {
	for _, q := range c.Queues {
		info, err := c.Inspector.GetTaskInfo(q, taskID)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cancel task %s: look it up in queue %s: %w", taskID, q, err)
		}
		return info, nil
	}
	return nil, ctx.Err()
}

// ended is the outcome for a task that is on no queue, or has ended.
func (c *Canceller) ended(ctx context.Context, taskID string) (Outcome, error) {
	e, err := c.Reader.Lookup(ctx, taskID)
	if errors.Is(err, results.ErrNoResult) {
		return Outcome{TaskID: taskID}, fmt.Errorf("task %s: %w: it is on none of the queues and has no result (never enqueued, or its result expired)", taskID, ErrUnknown)
	}
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{TaskID: taskID, State: Ended, Result: e}, nil
}

// publish publishes the cancelled result of a task the canceller removed.
// Exactly once holds with a worker that is still finishing an earlier
// delivery of the same run: the publish is keyed by the run.
func (c *Canceller) publish(ctx context.Context, info *asynq.TaskInfo, st ledger.State, run int, actor string) (Outcome, error) {
	ref, _ := tasks.Parse(info.Type, info.Payload)
	now := c.Now()
	e := results.Entry{
		TaskID:     info.ID,
		TaskType:   info.Type,
		Queue:      info.Queue,
		Provider:   ref.Provider,
		Subject:    ref.Subject(),
		Status:     results.StatusFailed,
		Attempts:   st.Attempts,
		HTTPStatus: st.LastStatus,
		ErrorKind:  results.KindCancelled,
		Error:      Message(actor, waitingWhere(info.State)),
		Meta:       string(ref.Meta),
		EnqueuedAt: st.EnqueuedAt(ref.EnqueuedAt, now),
		FinishedAt: now,
		Worker:     c.Worker,
		TraceID:    ref.TraceID(),
	}
	if e.Meta == "" {
		e.Meta = "{}"
	}
	id, added, err := c.Publisher.Publish(ctx, e, run, Key(info.ID))
	if err != nil {
		return Outcome{}, fmt.Errorf("cancel task %s: removed it, but publishing its result failed: %w", info.ID, err)
	}
	if !added {
		// The worker of an earlier delivery published first: its result
		// is the one.
		return c.ended(ctx, info.ID)
	}
	e.ID = id
	e.Fields = written(e)
	return Outcome{TaskID: info.ID, State: Cancelled, Result: e}, nil
}

// written is what the stream holds of an entry Publish added: its fields
// as Values writes them.
func written(e results.Entry) results.Map {
	kv := e.Values()
	m := make(results.Map, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// waitingWhere says where a removed task was, for its result's error.
func waitingWhere(s asynq.TaskState) string {
	switch s {
	case asynq.TaskStateScheduled:
		return "while it was scheduled, before it ran"
	case asynq.TaskStateRetry:
		return "while it waited to be tried again"
	case asynq.TaskStateArchived:
		return "after asynq archived it without a result"
	}
	return "while it was pending, before it ran"
}

// cancelRunning writes the record of a running task, tells its worker, and
// waits up to wait for the result that lands.
func (c *Canceller) cancelRunning(ctx context.Context, info *asynq.TaskInfo, actor string, wait time.Duration) (Outcome, error) {
	// Noted first: a result published from here on is after it, and one
	// published before is seen by the check below.
	last, err := c.Reader.LastID(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if err := Request(ctx, c.RDB, info.ID, actor); err != nil {
		return Outcome{}, err
	}
	// Best effort: the record is what counts, and the worker's Watcher
	// finds it within a poll if this message is lost.
	_ = c.Inspector.CancelProcessing(info.ID)
	st, _, err := c.Ledger.Peek(ctx, info.ID)
	if err != nil {
		return Outcome{}, err
	}
	published, _, err := c.Publisher.Published(ctx, info.ID)
	if err != nil {
		return Outcome{}, err
	}
	if _, ended := currentRun(info, st, published); ended {
		e, err := c.Reader.Lookup(ctx, info.ID)
		if err != nil {
			return Outcome{}, err
		}
		return c.settled(ctx, Outcome{TaskID: info.ID, Result: e}, actor)
	}
	requested := Outcome{TaskID: info.ID, State: Requested}
	if wait <= 0 {
		return requested, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got *Outcome
	errFound := errors.New("found")
	err = c.Reader.Follow(wctx, last, func(_ context.Context, e results.Entry) error {
		if e.TaskID != info.ID {
			return nil
		}
		got = &Outcome{TaskID: info.ID, Result: e}
		return errFound
	})
	switch {
	case got != nil:
		return c.settled(ctx, *got, actor)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return requested, nil
	case err != nil:
		return Outcome{}, err
	}
	return requested, nil
}

// settled completes the outcome of a running task's cancel once its
// result is known: Cancelled when it is the cancelled one, EndedFirst
// otherwise, and then the record, which outlived the run it was meant for,
// is removed so that an operator's re-run does not find it.
func (c *Canceller) settled(ctx context.Context, o Outcome, actor string) (Outcome, error) {
	if o.Result.ErrorKind == results.KindCancelled {
		o.State = Cancelled
		return o, nil
	}
	o.State = EndedFirst
	if err := withdraw(context.WithoutCancel(ctx), c.RDB, o.TaskID, actor); err != nil {
		return o, fmt.Errorf("task %s ended before the cancel took effect, but removing the cancel record failed: %w", o.TaskID, err)
	}
	return o, nil
}
