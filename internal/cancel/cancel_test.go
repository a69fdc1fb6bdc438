package cancel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/redistest"
)

// The cancelled result's error names who cancelled and where the task was.
func TestMessage(t *testing.T) {
	for _, tc := range []struct{ actor, where, want string }{
		{cancel.ActorCLI, "while it was pending, before it ran", "cancelled by CLI while it was pending, before it ran"},
		{cancel.ActorHTTP, "while it was running", "cancelled by HTTP while it was running"},
		{"", "while it was scheduled", "cancelled by an unnamed canceller while it was scheduled"},
	} {
		if got := cancel.Message(tc.actor, tc.where); got != tc.want {
			t.Errorf("Message(%q, %q) = %q, want %q", tc.actor, tc.where, got, tc.want)
		}
	}
}

// taskID is a task id of this test whose cancel record is deleted at its end.
func taskID(t *testing.T, rdb redis.UniversalClient) string {
	return strings.TrimPrefix(redistest.Keys(t, rdb, cancel.KeyPrefix+"task_"), cancel.KeyPrefix)
}

// A running task's context ends, with cause ErrCancelled, at the first
// poll after its record is written; a task without one runs on, and a task
// whose run has ended is no longer read.
func TestWatcherEndsTheTaskWhoseRecordExists(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := t.Context()
	w := cancel.NewWatcher(rdb, 10*time.Millisecond, nil)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); <-done })

	cancelled, other := taskID(t, rdb), taskID(t, rdb)
	cctx, stopC := w.Watch(ctx, cancelled)
	defer stopC()
	octx, stopO := w.Watch(ctx, other)
	defer stopO()

	if err := cancel.Request(ctx, rdb, cancelled, cancel.ActorUI); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the task's context did not end after its cancel record was written")
	}
	if cause := context.Cause(cctx); !errors.Is(cause, cancel.ErrCancelled) {
		t.Errorf("cause = %v, want ErrCancelled", cause)
	}
	if actor, ok, err := cancel.Recorded(ctx, rdb, cancelled); err != nil || !ok || actor != cancel.ActorUI {
		t.Errorf("Recorded = %q, %v, %v; want %q, true", actor, ok, err, cancel.ActorUI)
	}

	// The other task has no record: several polls later it still runs.
	time.Sleep(50 * time.Millisecond)
	if octx.Err() != nil {
		t.Fatalf("a task without a cancel record was ended: %v", context.Cause(octx))
	}
	// Once its run has ended, a record written for it is not its cause.
	stopO()
	if err := cancel.Request(ctx, rdb, other, cancel.ActorCLI); err != nil {
		t.Fatal(err)
	}
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if cause := context.Cause(octx); errors.Is(cause, cancel.ErrCancelled) {
		t.Errorf("a task whose run had ended was cancelled by a later record")
	}
}
