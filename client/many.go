package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/refreshq/refreshq/tasks"
)

// State is what became of one refresh of a batch.
type State int

// The states of an Outcome.
const (
	// NotEnqueued: the refresh was not enqueued (never attempted after an
	// earlier failure, or failed before its enqueue command was sent).
	NotEnqueued State = iota
	// Enqueued: the task is in Redis.
	Enqueued
	// Duplicate: skipped under Unique; Err is a *DuplicateError.
	Duplicate
	// InDoubt: Redis failed while the enqueue command was in flight; the
	// task, TaskID, may or may not exist.
	InDoubt
)

// String is the state as the CLI reports it: "enqueued", "duplicate", ...
func (s State) String() string {
	switch s {
	case Enqueued:
		return "enqueued"
	case Duplicate:
		return "duplicate"
	case InDoubt:
		return "in doubt"
	}
	return "not enqueued"
}

// Outcome is what became of the refresh at Index of a batch.
type Outcome struct {
	Index int
	// TaskID is the task's id when State is Enqueued or InDoubt.
	TaskID string
	State  State
	// Err is nil when Enqueued; a *DuplicateError, an *InDoubtError, or
	// why the refresh was not enqueued otherwise.
	Err error
}

// Invalid is one refresh of a batch that failed validation.
type Invalid struct {
	Index int
	Err   error // usually a *tasks.ValidationError
}

// InvalidBatchError lists every invalid refresh of a batch; none of the
// batch was enqueued.
type InvalidBatchError struct {
	Invalid []Invalid
}

// Error counts the invalid refreshes and names the first ten.
func (e *InvalidBatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the refreshes are invalid; nothing was enqueued", len(e.Invalid))
	for i, inv := range e.Invalid {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Invalid)-i)
			break
		}
		fmt.Fprintf(&b, "; #%d: %v", inv.Index, inv.Err)
	}
	return b.String()
}

// ErrStopped wraps the error that made EnqueueMany stop launching enqueues.
var ErrStopped = errors.New("enqueue stopped")

// EnqueueMany validates every refresh, then enqueues them concurrently
// (WithConcurrency at a time) with opts applied to each.
//
// If any refresh is invalid it returns an *InvalidBatchError listing all of
// them and enqueues nothing. Otherwise it returns one Outcome per refresh,
// in input order. On the first Redis failure (or when ctx ends) it stops
// launching enqueues: that refresh is InDoubt, those in flight end as they
// end, the rest are NotEnqueued, and the error returned wraps ErrStopped and
// the cause. Duplicates are not errors.
func (c *Client) EnqueueMany(ctx context.Context, rs []tasks.Refresh, opts ...EnqueueOption) ([]Outcome, error) {
	s, err := enqueueOptions(opts)
	if err != nil {
		return nil, err
	}
	s.traceFrom(ctx)
	if s.taskID != "" {
		return nil, &OptionError{Problem: "TaskID would give every refresh the same id; EnqueueMany makes one per refresh"}
	}
	resolved, err := c.resolveAll(rs, &s)
	if err != nil {
		return nil, err
	}
	b := &batch{c: c, s: &s, resolved: resolved, out: make([]Outcome, len(rs))}
	for i := range b.out {
		b.out[i] = Outcome{Index: i, State: NotEnqueued}
	}
	launch, firstOf := launchOrder(resolved, s.unique > 0)
	b.run(ctx, launch)
	b.followFirsts(firstOf)
	if b.firstErr == nil {
		return b.out, nil
	}
	for i := range b.out {
		if b.out[i].State == NotEnqueued && b.out[i].Err == nil {
			b.out[i].Err = fmt.Errorf("not attempted: %w", b.firstErr)
		}
	}
	return b.out, fmt.Errorf("%w after a failure: %w", ErrStopped, b.firstErr)
}

// resolveAll resolves every refresh, or lists every invalid one.
func (c *Client) resolveAll(rs []tasks.Refresh, s *enqueueSettings) ([]tasks.Refresh, error) {
	resolved := make([]tasks.Refresh, len(rs))
	var invalid []Invalid
	for i, r := range rs {
		var err error
		resolved[i], err = c.resolve(r, s)
		if err != nil {
			invalid = append(invalid, Invalid{Index: i, Err: err})
		}
	}
	if len(invalid) > 0 {
		return nil, &InvalidBatchError{Invalid: invalid}
	}
	return resolved, nil
}

// launchOrder is the indexes of rs to enqueue, in order. Under Unique, a
// subject repeated within the batch is enqueued once, for its first
// occurrence, and the rest follow its outcome: the earlier refresh wins
// deterministically, as it would sent one by one. firstOf maps each later
// occurrence to its first.
func launchOrder(rs []tasks.Refresh, unique bool) (launch []int, firstOf map[int]int) {
	launch = make([]int, 0, len(rs))
	firstOf = map[int]int{}
	if !unique {
		for i := range rs {
			launch = append(launch, i)
		}
		return launch, firstOf
	}
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		k := uniqueKey(r.Provider, r.Subject())
		if first, ok := seen[k]; ok {
			firstOf[i] = first
			continue
		}
		seen[k] = i
		launch = append(launch, i)
	}
	return launch, firstOf
}

// batch is one EnqueueMany call's refreshes and what became of them.
type batch struct {
	c        *Client
	s        *enqueueSettings
	resolved []tasks.Refresh
	out      []Outcome

	stopped  atomic.Bool
	mu       sync.Mutex // serialises progress and firstErr
	firstErr error
}

// run enqueues the refreshes at launch, WithConcurrency at a time, and
// launches none after the first failure or once ctx ends.
func (b *batch) run(ctx context.Context, launch []int) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(b.c.conc, len(launch)) {
		wg.Go(func() {
			for {
				if b.stopped.Load() {
					return
				}
				if err := ctx.Err(); err != nil {
					b.stop(err)
					return
				}
				n := int(next.Add(1) - 1)
				if n >= len(launch) {
					return
				}
				i := launch[n]
				o := b.c.enqueue(ctx, b.resolved[i], b.s, time.Now())
				o.Index = i
				b.out[i] = o
				if o.State == InDoubt || o.State == NotEnqueued {
					b.stop(o.Err)
				}
				b.report(o)
			}
		})
	}
	wg.Wait()
}

func (b *batch) stop(err error) {
	b.mu.Lock()
	if b.firstErr == nil {
		b.firstErr = err
	}
	b.mu.Unlock()
	b.stopped.Store(true)
}

func (b *batch) report(o Outcome) {
	if b.s.progress != nil {
		b.mu.Lock()
		b.s.progress(o)
		b.mu.Unlock()
	}
}

// followFirsts gives each later occurrence of a subject the outcome its
// first occurrence's enqueue implies: a duplicate of the task it made, or
// not enqueued with its error.
func (b *batch) followFirsts(firstOf map[int]int) {
	for i := range b.out {
		first, ok := firstOf[i]
		if !ok {
			continue
		}
		o := Outcome{Index: i, State: NotEnqueued, Err: b.out[first].Err}
		switch f := b.out[first]; f.State {
		case Enqueued, InDoubt:
			r := b.resolved[i]
			o.State, o.Err = Duplicate, &DuplicateError{Provider: r.Provider, Subject: r.Subject(), ExistingTaskID: f.TaskID}
		case Duplicate:
			o.State = Duplicate
		}
		b.out[i] = o
		if o.Err != nil || o.State != NotEnqueued {
			b.report(o)
		}
	}
}
