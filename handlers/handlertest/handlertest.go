package handlertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Settings of the harness's asynq server, and why.
const (
	// concurrency is small: a test works one task at a time, and the
	// machine running the tests is shared.
	concurrency = 2
	// taskCheck is how often the idle server looks for a new task, so
	// Work does not wait out asynq's default second.
	taskCheck = 10 * time.Millisecond
	// noForwarding keeps asynq from moving retry and scheduled tasks to
	// pending on its own: a test decides when a retry runs (Again).
	noForwarding = 24 * time.Hour
	// retention keeps a completed task readable: asynq deletes a
	// completed task at once when its Retention is 0.
	retention = time.Hour
	// waitLimit bounds how long Work and Again wait for a handler's run,
	// so a task that never runs fails its test instead of hanging it.
	waitLimit = time.Minute
	// endedRuns is how many ended runs of one task are kept unread.
	endedRuns = 64
)

// Run is what one run of the handler on one task left behind.
type Run struct {
	TaskID string
	// Err is what the handler returned: nil when the task succeeded, an
	// error wrapping asynq.SkipRetry when it ended failed, and any other
	// error when it handed the task back to asynq to run again.
	Err error
	// Task is the task as asynq holds it after the run. Its State is
	// asynq.TaskStateCompleted, TaskStateRetry (NextProcessAt is when
	// asynq would run it again) or TaskStateArchived. Nil when asynq
	// deleted it: a completed task enqueued with asynq.Retention(0).
	Task *asynq.TaskInfo
	// Result is the task's result in the results stream after the run,
	// nil while it has none.
	Result *results.Entry
}

// Harness works refresh tasks through a real asynq server running a
// handlers.Refresh. Its methods call tb.Fatal when the harness itself
// fails, so call them from the test's goroutine.
type Harness struct {
	tb        testing.TB
	queues    []string
	stream    string
	client    *asynq.Client
	inspector *asynq.Inspector
	reader    *results.Reader

	mu      sync.Mutex
	ended   map[string]chan error // a task id's ended runs, by the error each returned
	queueOf map[string]string     // the queue of each task the harness enqueued
}

// New starts an asynq server on cfg.Redis running handlers.New(cfg),
// mounted with Register and configured with ConfigureServer, and the
// Refresh's RunMaintenance beside it; both stop when the test ends.
//
// The server serves cfg.Queues. When cfg.Queues is empty it serves one
// queue named for the test, and when cfg.ResultsStream is empty results
// go to a stream named for the test, so tests sharing one Redis do not
// see each other's tasks; the harness deletes that queue and stream when
// the test ends. An API key's budget and cooldowns are the fleet's, kept
// in Redis by key whatever the queue: tests sharing a Redis each use an
// API key of their own.
func New(tb testing.TB, cfg handlers.Config) *Harness {
	tb.Helper()
	if cfg.Redis == nil {
		tb.Fatal("handlertest: Config.Redis is required")
	}
	rdb := cfg.Redis
	var ownQueue, ownStream string
	if len(cfg.Queues) == 0 {
		ownQueue = uniqueName("handlertest_")
		cfg.Queues = []string{ownQueue}
	}
	if cfg.ResultsStream == "" {
		ownStream = uniqueName("handlertest_results_")
		cfg.ResultsStream = ownStream
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = concurrency
	}
	refresh, err := handlers.New(cfg)
	if err != nil {
		tb.Fatalf("handlertest: %v", err)
	}

	h := &Harness{
		tb:        tb,
		queues:    cfg.Queues,
		stream:    cfg.ResultsStream,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		reader:    results.NewReader(rdb, cfg.ResultsStream),
		ended:     map[string]chan error{},
		queueOf:   map[string]string{},
	}
	mux := asynq.NewServeMux()
	refresh.Register(mux)
	srvCfg := asynq.Config{
		Queues:                   map[string]int{},
		Concurrency:              cfg.Concurrency,
		TaskCheckInterval:        taskCheck,
		DelayedTaskCheckInterval: noForwarding,
		LogLevel:                 asynq.FatalLevel,
	}
	for i, q := range cfg.Queues {
		srvCfg.Queues[q] = len(cfg.Queues) - i // highest priority first, as in Config.Queues
	}
	handlers.ConfigureServer(&srvCfg)
	srv := asynq.NewServerFromRedisClient(rdb, srvCfg)
	if err := srv.Start(h.observe(mux)); err != nil {
		refresh.Close()
		tb.Fatalf("handlertest: start asynq server: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var maintenance sync.WaitGroup
	maintenance.Go(func() { refresh.RunMaintenance(ctx) })

	tb.Cleanup(func() {
		srv.Shutdown()
		stop()
		maintenance.Wait()
		if err := refresh.Close(); err != nil {
			tb.Errorf("handlertest: close the Refresh: %v", err)
		}
		if ownQueue != "" {
			_ = h.inspector.DeleteQueue(ownQueue, true)
		}
		if ownStream != "" {
			keys := []string{ownStream}
			for id := range h.queueOf {
				keys = append(keys, results.IndexKey(ownStream, id))
			}
			rdb.Del(context.Background(), keys...)
		}
	})
	return h
}

// Queue is the queue a refresh goes on when it names none: the first of
// Config.Queues, or the harness's own.
func (h *Harness) Queue() string { return h.queues[0] }

// ResultsStream is the results stream's key: Config.ResultsStream, or
// the harness's own.
func (h *Harness) ResultsStream() string { return h.stream }

// observe tells the waiting test when a run of the handler ended, and
// with which error.
func (h *Harness) observe(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		err := next.ProcessTask(ctx, t)
		id, _ := asynq.GetTaskID(ctx)
		select {
		case h.endedRuns(id) <- err:
		default: // a test that stopped reading: never hold up the server
		}
		return err
	})
}

func (h *Harness) endedRuns(id string) chan error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.ended[id]
	if !ok {
		c = make(chan error, endedRuns)
		h.ended[id] = c
	}
	return c
}

// Work enqueues ref's task, as tasks.NewTask builds it with opts, and
// returns once the handler's first run on it has ended. A refresh naming
// no queue goes on Queue(); one naming a queue the harness does not
// serve fails the test.
func (h *Harness) Work(ctx context.Context, ref tasks.Refresh, opts ...asynq.Option) Run {
	h.tb.Helper()
	if ref.Queue == "" {
		ref.Queue = h.Queue()
	}
	t, err := tasks.NewTask(ref, opts...)
	if err != nil {
		h.tb.Fatalf("handlertest: %v", err)
	}
	return h.work(ctx, t)
}

// WorkTask is Work for a task built by hand, such as one another service
// enqueued with a payload of its own making. It goes on Queue() unless
// opts name another.
func (h *Harness) WorkTask(ctx context.Context, t *asynq.Task, opts ...asynq.Option) Run {
	h.tb.Helper()
	return h.work(ctx, t, append([]asynq.Option{asynq.Queue(h.Queue())}, opts...)...)
}

func (h *Harness) work(ctx context.Context, t *asynq.Task, opts ...asynq.Option) Run {
	h.tb.Helper()
	// Retention comes first, so that opts may still set it.
	info, err := h.client.EnqueueContext(ctx, t, append([]asynq.Option{asynq.Retention(retention)}, opts...)...)
	if err != nil {
		h.tb.Fatalf("handlertest: enqueue: %v", err)
	}
	h.mu.Lock()
	h.queueOf[info.ID] = info.Queue
	h.mu.Unlock()
	if !slices.Contains(h.queues, info.Queue) {
		_ = h.inspector.DeleteTask(info.Queue, info.ID)
		h.tb.Fatalf("handlertest: task %s went on queue %q, which the harness does not serve (it serves %q)", info.ID, info.Queue, h.queues)
	}
	return h.wait(ctx, info.ID, info.Queue)
}

// Again runs the task again now and returns once that run has ended. A
// task in retry or scheduled is made pending with asynq's
// Inspector.RunTask, so the test does not wait for its delay; an
// archived one is re-run as an operator would re-run it. Again skips
// nothing the handler waits for in Redis: a run that finds its API key
// cooling down or its budget spent waits, or hands the task back again.
func (h *Harness) Again(ctx context.Context, taskID string) Run {
	h.tb.Helper()
	h.mu.Lock()
	queue, ok := h.queueOf[taskID]
	h.mu.Unlock()
	if !ok {
		h.tb.Fatalf("handlertest: task %s was not enqueued by this harness", taskID)
	}
	info, err := h.inspector.GetTaskInfo(queue, taskID)
	if err != nil {
		h.tb.Fatalf("handlertest: read task %s: %v", taskID, err)
	}
	switch info.State {
	case asynq.TaskStateRetry, asynq.TaskStateScheduled, asynq.TaskStateArchived:
		if err := h.inspector.RunTask(queue, taskID); err != nil {
			h.tb.Fatalf("handlertest: run task %s (%s) now: %v", taskID, info.State, err)
		}
	case asynq.TaskStatePending, asynq.TaskStateActive:
		// Already on its way to a run: that run is the next one.
	default:
		h.tb.Fatalf("handlertest: task %s is %s: nothing runs it again", taskID, info.State)
	}
	return h.wait(ctx, taskID, queue)
}

// WorkUntilDone works ref's task, then runs it Again while it waits in
// retry (or scheduled) without a result, up to maxRuns runs in all. It
// returns every run; the last one says how the task stands.
func (h *Harness) WorkUntilDone(ctx context.Context, ref tasks.Refresh, maxRuns int, opts ...asynq.Option) []Run {
	h.tb.Helper()
	runs := []Run{h.Work(ctx, ref, opts...)}
	for len(runs) < maxRuns {
		last := runs[len(runs)-1]
		if last.Result != nil || last.Task == nil ||
			(last.Task.State != asynq.TaskStateRetry && last.Task.State != asynq.TaskStateScheduled) {
			break
		}
		runs = append(runs, h.Again(ctx, last.TaskID))
	}
	return runs
}

// wait returns the next ended run of the task, once asynq has settled
// the task's state after it.
func (h *Harness) wait(ctx context.Context, id, queue string) Run {
	h.tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	run := Run{TaskID: id}
	select {
	case run.Err = <-h.endedRuns(id):
	case <-ctx.Done():
		h.tb.Fatalf("handlertest: task %s: no run of the handler ended: %v", id, ctx.Err())
	}
	// asynq moves the task out of active just after the handler returns.
	for {
		info, err := h.inspector.GetTaskInfo(queue, id)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			break
		}
		if err != nil {
			h.tb.Fatalf("handlertest: read task %s: %v", id, err)
		}
		if info.State != asynq.TaskStateActive {
			run.Task = info
			break
		}
		select {
		case <-ctx.Done():
			h.tb.Fatalf("handlertest: task %s stayed active after its run ended: %v", id, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	e, err := h.reader.Lookup(ctx, id)
	switch {
	case err == nil:
		run.Result = &e
	case !errors.Is(err, results.ErrNoResult):
		h.tb.Fatalf("handlertest: look up the result of %s: %v", id, err)
	}
	return run
}

// uniqueName is prefix and random hex: a queue or stream name no other
// test on the same Redis uses (asynq has no key prefix to keep them apart).
func uniqueName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
