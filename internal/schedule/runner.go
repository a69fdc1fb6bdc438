package schedule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// Defaults for Options.
const (
	DefaultTick        = time.Second
	DefaultReloadEvery = 5 * time.Second

	// enqueueTimeout bounds one Redis call so a hung connection cannot stall
	// every other entry.
	enqueueTimeout = 5 * time.Second
	// After a failed enqueue the runner calls Redis again only after a
	// backoff, whichever entry is due: an outage fails every entry alike, and
	// each failed call can take seconds, so trying them all each tick would
	// stall the loop.
	minRetryWait = time.Second
	maxRetryWait = 30 * time.Second
)

// Options tune a Runner. The zero value is usable.
type Options struct {
	// Logger gets one line per enqueue, reload and failure; nil discards.
	Logger *slog.Logger
	// Tick is how often entries are checked; DefaultTick when zero. A check
	// that finds the period unchanged does not touch Redis.
	Tick time.Duration
	// ReloadEvery is how often the file is checked for changes;
	// DefaultReloadEvery when zero, never when negative.
	ReloadEvery time.Duration
	// Now is the clock, for tests; time.Now when nil.
	Now func() time.Time
	// OnEnqueue is called after each enqueue attempt that reached a verdict:
	// dup is true when another worker (or an earlier run) already enqueued
	// the period. Called from Run's goroutine; it must not block.
	OnEnqueue func(entry, taskID string, dup bool)
	// Queues, when set, are the queues the worker serves: an entry on any
	// other queue is an error, because its tasks would never run.
	Queues []string
}

// Stats count enqueue attempts since the Runner was made.
type Stats struct {
	Enqueued uint64 // this runner enqueued the period
	Skipped  uint64 // the period's task id was taken: someone else did
	Failed   uint64 // Redis failed; retried with backoff within the period
}

// Runner enqueues each schedule entry once per period. Any number of
// Runners may read the same file against the same Redis: the task id names
// the entry and period, so only the first enqueue of a period succeeds.
type Runner struct {
	client *asynq.Client
	path   string
	opt    Options
	log    *slog.Logger

	mu    sync.Mutex // guards sched, for Schedule
	sched Schedule

	// Owned by Run's goroutine.
	file    fileStamp
	lastBad string // the last bad file's hash or read error, logged once
	state   map[string]*entryState

	retryAt time.Time     // no Redis calls before this, after a failure
	wait    time.Duration // the current backoff

	running                   atomic.Bool
	enqueued, skipped, failed atomic.Uint64
}

type fileStamp struct {
	mod  time.Time
	size int64
	hash [sha256.Size]byte
}

type entryState struct {
	start, end time.Time // the period now holds, as last computed
	known      bool      // start and end are computed
	done       time.Time // the period start last enqueued or found taken
}

// NewRunner loads the schedule at path and returns a Runner for it. An
// invalid file is an error: a worker must not start with a schedule it
// cannot follow.
func NewRunner(client *asynq.Client, path string, opt Options) (*Runner, error) {
	if client == nil {
		return nil, errors.New("schedule: NewRunner needs an asynq client")
	}
	if path == "" {
		return nil, errors.New("schedule: no schedule file given (SCHEDULE_FILE)")
	}
	if opt.Tick <= 0 {
		opt.Tick = DefaultTick
	}
	if opt.ReloadEvery == 0 {
		opt.ReloadEvery = DefaultReloadEvery
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Runner{client: client, path: path, opt: opt, log: opt.Logger, state: map[string]*entryState{}}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, stamp, err := r.load()
	if err != nil {
		return nil, err
	}
	r.sched, r.file = s, stamp
	return r, nil
}

// load reads and validates the file, including the queues check.
func (r *Runner) load() (Schedule, fileStamp, error) {
	fi, err := os.Stat(r.path)
	if err != nil {
		return Schedule{}, fileStamp{}, fmt.Errorf("schedule file: %w (set SCHEDULE_FILE to a readable file, or unset it for no schedule)", err)
	}
	data, err := readFile(r.path)
	if err != nil {
		return Schedule{}, fileStamp{}, err
	}
	stamp := fileStamp{mod: fi.ModTime(), size: fi.Size(), hash: sha256.Sum256(data)}
	s, err := Parse(data)
	if err == nil {
		err = checkQueues(s, r.opt.Queues)
	}
	if err != nil {
		return Schedule{}, stamp, fmt.Errorf("schedule file %s: %w", r.path, err)
	}
	return s, stamp, nil
}

func checkQueues(s Schedule, queues []string) error {
	if len(queues) == 0 {
		return nil
	}
	var ps []Problem
	for i, e := range s.Entries {
		if !slices.Contains(queues, e.Queue) {
			ps = append(ps, Problem{Entry: i + 1, Line: e.Line, Label: e.Provider + " " + e.Subject(), Field: "queue",
				Msg: fmt.Sprintf("%q is not served by the workers; use one of %s (QUEUES)", e.Queue, strings.Join(queues, ", "))})
		}
	}
	if len(ps) > 0 {
		return &Error{Problems: ps}
	}
	return nil
}

// Schedule returns the schedule the Runner follows now.
func (r *Runner) Schedule() Schedule {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sched
}

// Stats returns the enqueue counts so far; safe from any goroutine.
func (r *Runner) Stats() Stats {
	return Stats{Enqueued: r.enqueued.Load(), Skipped: r.skipped.Load(), Failed: r.failed.Load()}
}

// Run enqueues due periods every Tick and re-reads the file every
// ReloadEvery until ctx ends, then returns nil. It returns an error at once
// if the Runner is already running.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("schedule: Runner.Run called twice")
	}
	defer r.running.Store(false)

	r.log.Info("schedule started", "path", r.path, "entries", len(r.Schedule().Entries))
	tick := time.NewTicker(r.opt.Tick)
	defer tick.Stop()
	var reload <-chan time.Time
	if r.opt.ReloadEvery > 0 {
		t := time.NewTicker(r.opt.ReloadEvery)
		defer t.Stop()
		reload = t.C
	}
	r.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload:
			r.reload()
		case <-tick.C:
			r.tick(ctx)
		}
	}
}

// tick enqueues every entry whose current period this Runner has not yet
// enqueued or found taken. Only the current period: one missed while the
// worker was down is not made up.
func (r *Runner) tick(ctx context.Context) {
	now := r.opt.Now()
	for _, e := range r.Schedule().Entries {
		if ctx.Err() != nil {
			return
		}
		st := r.state[e.Name]
		if st == nil {
			st = &entryState{}
			r.state[e.Name] = st
		}
		if !st.known || now.Before(st.start) || (!st.end.IsZero() && !now.Before(st.end)) {
			st.start, st.end = e.Period(now)
			st.known = true
		}
		if st.start.IsZero() || st.done.Equal(st.start) || now.Before(r.retryAt) {
			continue
		}
		if !r.enqueue(ctx, e, st, now) {
			return // Redis is failing: leave the other entries to the retry
		}
	}
}

// enqueue reports false when Redis failed.
func (r *Runner) enqueue(ctx context.Context, e Entry, st *entryState, now time.Time) bool {
	end := st.end
	if end.IsZero() { // a cron entry that never fires again: keep the id a day
		end = st.start.Add(24 * time.Hour)
	}
	id := e.TaskID(st.start)
	log := r.log.With("schedule", e.Name, "task_id", id, "queue", e.Queue, "period", st.start.UTC().Format(time.RFC3339))
	task, err := e.Task(now, st.start, end)
	if err != nil { // validated at load; only a bug gets here
		log.Error("scheduled refresh not built", "error", err)
		st.done = st.start
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, enqueueTimeout)
	_, err = r.client.EnqueueContext(cctx, task)
	cancel()
	switch {
	case err == nil:
		r.enqueued.Add(1)
		log.Info("scheduled refresh enqueued", "type", task.Type())
	case errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask):
		r.skipped.Add(1)
		log.Debug("scheduled refresh already enqueued for this period")
	default:
		if ctx.Err() != nil {
			return false
		}
		r.failed.Add(1)
		r.wait = min(max(2*r.wait, minRetryWait), maxRetryWait)
		r.retryAt = now.Add(r.wait)
		log.Warn("scheduled refresh not enqueued; will retry", "error", err, "retry_in", r.wait.String())
		return false
	}
	st.done, r.retryAt, r.wait = st.start, time.Time{}, 0
	if r.opt.OnEnqueue != nil {
		r.opt.OnEnqueue(e.Name, id, err != nil)
	}
	return true
}

// reload swaps in the file's schedule when the file changed and is valid.
// A broken or missing file keeps the schedule in force: dropping every
// refresh because of a typo is the worse failure.
func (r *Runner) reload() {
	fi, err := os.Stat(r.path)
	if err != nil {
		r.keep(err.Error(), err)
		return
	}
	if fi.ModTime().Equal(r.file.mod) && fi.Size() == r.file.size {
		return
	}
	data, err := readFile(r.path)
	if err != nil {
		r.keep(err.Error(), err)
		return
	}
	hash := sha256.Sum256(data)
	if hash == r.file.hash {
		r.file.mod, r.file.size = fi.ModTime(), fi.Size() // touched, or restored
		r.lastBad = ""
		return
	}
	s, err := Parse(data)
	if err == nil {
		err = checkQueues(s, r.opt.Queues)
	}
	if err != nil {
		r.keep(string(hash[:]), fmt.Errorf("schedule file %s: %w", r.path, err))
		return
	}
	old := r.Schedule()
	added, removed := diff(old, s)
	keep := map[string]bool{}
	for _, e := range s.Entries {
		keep[e.Name] = true
	}
	for name, st := range r.state {
		if !keep[name] {
			delete(r.state, name)
			continue
		}
		// A named entry may have a new spec: recompute its period, but keep
		// done so an unchanged period is not enqueued again.
		st.known = false
	}
	r.mu.Lock()
	r.sched = s
	r.mu.Unlock()
	r.file = fileStamp{mod: fi.ModTime(), size: fi.Size(), hash: hash}
	r.lastBad = ""
	r.log.Info("schedule reloaded", "path", r.path, "entries", len(s.Entries), "added", added, "removed", removed)
}

// keep logs why the file was not reloaded, once per distinct bad content
// or error, so a broken file does not flood the log every few seconds.
func (r *Runner) keep(key string, err error) {
	if key == r.lastBad {
		return
	}
	r.lastBad = key
	r.log.Error("schedule file not reloaded; keeping the previous schedule", "path", r.path, "entries", len(r.Schedule().Entries), "error", err)
}

func diff(old, cur Schedule) (added, removed int) {
	names := func(s Schedule) map[string]bool {
		m := map[string]bool{}
		for _, e := range s.Entries {
			m[e.Name+"\x00"+e.Spec()+"\x00"+e.Queue+"\x00"+string(bytes.TrimSpace(e.Meta))] = true
		}
		return m
	}
	o, c := names(old), names(cur)
	for k := range c {
		if !o[k] {
			added++
		}
	}
	for k := range o {
		if !c[k] {
			removed++
		}
	}
	return added, removed
}
