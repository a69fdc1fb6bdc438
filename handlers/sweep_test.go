package handlers

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// TestSweeperEndsTasksAsynqArchived: a task asynq archived without the
// handler ending it (here a foreign MaxRetry(0) task whose run was cut off
// by an error the handler never returns as final) gets one failed result
// from the sweeper, however many sweepers pass; a task the handler ended
// is left alone; and an operator's re-run of the swept task is a new run
// with its own result.
func TestSweeperEndsTasksAsynqArchived(t *testing.T) {
	ctx := context.Background()
	h, rdb, stream := testRefresh(t, func(ctx context.Context, r tasks.Refresh) (clients.Response, error) {
		if r.AccountID == "gone" {
			return clients.Response{}, &clients.APIError{Provider: tasks.ProviderHooked, StatusCode: 404, Message: "no such account"}
		}
		return clients.Response{StatusCode: 200, Body: []byte(`{"success":true,"data":{"account":{}}}`)}, nil
	})
	queue := redistest.Name(t, "q")
	insp := asynq.NewInspectorFromRedisClient(rdb)
	t.Cleanup(func() { _ = insp.DeleteQueue(queue, true) })
	h.inlineWait = 0
	h.redis = redisbatch.Direct{RDB: rdb}
	// "lost" stands for a run asynq ends without the handler: the error is
	// not retry.Final, and MaxRetry(0) makes asynq archive it at once, as
	// its recoverer does with a dead worker's task on its last try.
	var cutOff atomic.Bool
	cutOff.Store(true)
	handler := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		if cutOff.Load() && strings.Contains(string(task.Payload()), `"lost"`) {
			return errors.New("connection reset by peer")
		}
		return h.ProcessTask(ctx, task)
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Queues: map[string]int{queue: 1}, Concurrency: 2, TaskCheckInterval: 20 * time.Millisecond,
		RetryDelayFunc: retry.DelayFunc(time.Second), IsFailure: retry.IsFailure, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(handler); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	c := asynq.NewClientFromRedisClient(rdb)
	lost, err := c.Enqueue(asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(`{"account_id":"lost","meta":{"k":"v"}}`)), asynq.Queue(queue), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.Enqueue(asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(`{"account_id":"gone"}`)), asynq.Queue(queue), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	waitArchived(t, insp, queue, lost.ID, gone.ID)
	// Only the handler's own failure has a result so far.
	if got := entries(t, rdb, stream); len(got) != 1 || got[0].TaskID != gone.ID {
		t.Fatalf("before sweeping: %+v, want only the 404's result", got)
	}

	h.rdb, h.queues = rdb, []string{queue, "never-used"}
	sw := &sweeper{h: h}
	if n, err := sw.sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 result published", n, err)
	}
	// Another worker's sweeper, and this one again: nothing more.
	for _, s := range []*sweeper{sw, {h: h}} {
		if n, err := s.sweep(ctx); err != nil || n != 0 {
			t.Fatalf("second Sweep = %d, %v; want 0", n, err)
		}
	}
	got := entries(t, rdb, stream)
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2: %+v", len(got), got)
	}
	e := got[1]
	if e.TaskID != lost.ID || e.Status != results.StatusFailed || e.ErrorKind != results.KindNetwork ||
		!strings.Contains(e.Error, "connection reset by peer") || e.Subject != "lost" || e.Meta != `{"k":"v"}` || e.Provider != tasks.ProviderHooked {
		t.Errorf("swept entry = %+v; want a failed network result for %s carrying asynq's last error and the meta", e, lost.ID)
	}

	// The operator re-runs the swept task: a new run, its own result.
	cutOff.Store(false)
	if err := insp.RunTask(queue, lost.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(entries(t, rdb, stream)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the re-run published no result: %+v", entries(t, rdb, stream))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got = entries(t, rdb, stream)
	if e := got[2]; e.TaskID != lost.ID || e.Status != results.StatusSucceeded {
		t.Errorf("re-run entry = %+v; want the task's success", e)
	}
	if run, _, _ := h.publisher.Published(ctx, lost.ID); run != 2 {
		t.Errorf("published run = %d, want 2", run)
	}
}

func waitArchived(t *testing.T, insp *asynq.Inspector, queue string, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			info, err := insp.GetTaskInfo(queue, id)
			if err == nil && info.State == asynq.TaskStateArchived {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s not archived within 10s (%v)", id, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func entries(t *testing.T, rdb redis.UniversalClient, stream string) []results.Entry {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]results.Entry, 0, len(msgs))
	for _, m := range msgs {
		e := results.FromValues(m.ID, m.Values)
		out = append(out, e)
	}
	return out
}
