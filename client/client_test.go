package client

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/tasks"
)

func TestNewNeverShowsPassword(t *testing.T) {
	for _, u := range []string{"redis://u:s3cret@h:1/notadb", "redis://u:s3cret@h:1 /x", "http://u:s3cret@h"} {
		_, err := New(u)
		if err == nil {
			t.Fatalf("New(%q): no error", u)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q) error shows the password: %v", u, err)
		}
	}
}

func TestValidateNamesAllowedQueues(t *testing.T) {
	f := setup(t)
	err := f.c.Validate(tasks.Hooked("a"), Queue("nope"))
	if err == nil || !strings.Contains(err.Error(), f.queue) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Validate(queue nope) = %v, want it to name the queue and list %s", err, f.queue)
	}
	if err := f.c.Validate(tasks.Hooked("a"), In(time.Second), At(time.Now())); err == nil {
		t.Fatal("In and At together: no error")
	}
}

func TestEnqueue(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	before := time.Now().UTC()
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	id, err := f.c.Enqueue(ctx, tasks.BundleSocial("team1", "TIKTOK"), Queue(f.queue), Meta(json.RawMessage(`{"request_id":"r1"}`)), Deadline(deadline))
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.insp.GetTaskInfo(f.queue, id)
	if err != nil {
		t.Fatalf("task %s not in queue %s: %v", id, f.queue, err)
	}
	if info.Type != tasks.TypeBundleSocialProfileRefresh || info.State != asynq.TaskStatePending || info.MaxRetry != tasks.DefaultMaxRetry {
		t.Errorf("task = type %s, state %v, max retry %d", info.Type, info.State, info.MaxRetry)
	}
	r, err := tasks.Parse(info.Type, info.Payload)
	if err != nil {
		t.Fatalf("worker would reject the payload %s: %v", info.Payload, err)
	}
	if r.Subject() != "team1/TIKTOK" || string(r.Meta) != `{"request_id":"r1"}` || !r.Deadline.Equal(deadline) {
		t.Errorf("payload = %+v", r)
	}
	if r.EnqueuedAt.Before(before) || r.EnqueuedAt.After(time.Now()) || r.EnqueuedAt.Location() != time.UTC {
		t.Errorf("enqueued_at = %v, want now in UTC", r.EnqueuedAt)
	}

	t.Run("delayed", func(t *testing.T) {
		id, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), In(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		info, err := f.insp.GetTaskInfo(f.queue, id)
		if err != nil || info.State != asynq.TaskStateScheduled {
			t.Fatalf("task = %+v, %v; want scheduled", info, err)
		}
		r, _ := tasks.Parse(info.Type, info.Payload)
		if d := r.EnqueuedAt.Sub(time.Now()); d < 59*time.Minute {
			t.Errorf("enqueued_at is %s from now; want the due time, an hour on, so the deadline starts then", d)
		}
	})
	t.Run("refresh queue wins over option", func(t *testing.T) {
		r := tasks.Hooked(f.space.Subject())
		r.Queue = f.queue2
		id, err := f.c.Enqueue(ctx, r, Queue(f.queue))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.insp.GetTaskInfo(f.queue2, id); err != nil {
			t.Fatalf("task not on %s: %v", f.queue2, err)
		}
	})
	t.Run("own task id", func(t *testing.T) {
		id, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), TaskID("mine-"+f.queue))
		if err != nil || id != "mine-"+f.queue {
			t.Fatalf("Enqueue = %q, %v", id, err)
		}
		_, err = f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), TaskID("mine-"+f.queue))
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Fatalf("second Enqueue with the same id = %v, want ErrTaskIDConflict", err)
		}
	})
	t.Run("invalid writes nothing", func(t *testing.T) {
		q := f.queue2
		before := pending(t, f, q)
		for _, r := range []tasks.Refresh{tasks.BundleSocial("t", "NOPE"), tasks.Hooked(""), {Provider: "x"}} {
			if _, err := f.c.Enqueue(ctx, r, Queue(q)); err == nil {
				t.Errorf("Enqueue(%+v): no error", r)
			}
		}
		if _, err := f.c.Enqueue(ctx, tasks.Hooked("a"), Queue("not-allowed")); err == nil {
			t.Error("Enqueue on a queue not allowed: no error")
		}
		if got := pending(t, f, q); got != before {
			t.Errorf("pending on %s went from %d to %d", q, before, got)
		}
	})
}

func pending(t *testing.T, f *fixture, q string) int {
	t.Helper()
	info, err := f.insp.GetQueueInfo(q)
	if err != nil {
		return 0 // the queue does not exist yet
	}
	return info.Pending + info.Scheduled
}

func TestUnique(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	acct := f.space.Subject()
	first, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), Unique(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Another queue, other meta: still the same provider and subject.
	_, err = f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue2), Unique(time.Hour), Meta(json.RawMessage(`{"x":1}`)))
	var dup *DuplicateError
	if !errors.Is(err, ErrDuplicate) || !errors.As(err, &dup) || dup.ExistingTaskID != first || dup.Subject != acct || dup.Provider != "hooked" {
		t.Fatalf("second Enqueue = %v, want a *DuplicateError naming %s", err, first)
	}
	if n := pending(t, f, f.queue2); n != 0 {
		t.Errorf("%d tasks on %s, want the duplicate skipped", n, f.queue2)
	}
	// Other subjects, and the same subject without Unique, are not skipped.
	if _, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), Unique(time.Hour)); err != nil {
		t.Errorf("other subject: %v", err)
	}
	if _, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue)); err != nil {
		t.Errorf("same subject without Unique: %v", err)
	}

	t.Run("window ends", func(t *testing.T) {
		acct := f.space.Subject()
		if _, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), Unique(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if f.mini != nil {
			f.mini.FastForward(time.Second)
		} else {
			time.Sleep(400 * time.Millisecond)
		}
		if _, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), Unique(300*time.Millisecond)); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
	t.Run("failed enqueue frees the key", func(t *testing.T) {
		id := "taken-" + f.queue
		if _, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), TaskID(id)); err != nil {
			t.Fatal(err)
		}
		acct := f.space.Subject()
		if _, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), TaskID(id), Unique(time.Hour)); !errors.Is(err, asynq.ErrTaskIDConflict) {
			t.Fatalf("Enqueue = %v, want ErrTaskIDConflict", err)
		}
		if n, _ := f.rdb.Exists(ctx, uniqueKey("hooked", acct)).Result(); n != 0 {
			t.Error("uniqueness key kept after a failed enqueue: the next refresh would be skipped for nothing")
		}
	})
	t.Run("release only our own key", func(t *testing.T) {
		key := uniqueKey("hooked", f.space.Subject())
		f.rdb.Set(ctx, key, "someone-else", time.Hour)
		if err := releaseScript.Run(ctx, f.rdb, []string{key}, "me").Err(); err != nil {
			t.Fatal(err)
		}
		if v, _ := f.rdb.Get(ctx, key).Result(); v != "someone-else" {
			t.Errorf("key = %q; another task's key was released", v)
		}
	})
}

func TestEnqueueMany(t *testing.T) {
	f := setup(t, WithConcurrency(16))
	ctx := context.Background()
	var rs []tasks.Refresh
	for range 500 {
		rs = append(rs, tasks.Hooked(f.space.Subject()))
	}
	rs = append(rs, rs[0]) // a duplicate under Unique
	var calls int
	out, err := f.c.EnqueueMany(ctx, rs, Queue(f.queue), Unique(time.Hour), Progress(func(Outcome) { calls++ }))
	if err != nil {
		t.Fatal(err)
	}
	if calls != len(rs) || len(out) != len(rs) {
		t.Fatalf("%d progress calls, %d outcomes; want %d", calls, len(out), len(rs))
	}
	seen := map[string]bool{}
	counts := map[State]int{}
	for i, o := range out {
		counts[o.State]++
		if o.Index != i {
			t.Fatalf("outcome %d has Index %d", i, o.Index)
		}
		if o.State == Enqueued {
			if seen[o.TaskID] || o.TaskID == "" {
				t.Fatalf("task id %q repeated or empty", o.TaskID)
			}
			seen[o.TaskID] = true
		}
	}
	if counts[Enqueued] != 500 || counts[Duplicate] != 1 {
		t.Errorf("states = %v, want 500 enqueued and 1 duplicate", counts)
	}
	// The earlier of the two wins, as if they had been sent one by one.
	var dup *DuplicateError
	if last := out[len(out)-1]; last.State != Duplicate || !errors.As(last.Err, &dup) || dup.ExistingTaskID != out[0].TaskID {
		t.Errorf("repeat of refresh 0: %+v, want a duplicate of %s", last, out[0].TaskID)
	}
	if n := pending(t, f, f.queue); n != 500 {
		t.Errorf("%d tasks pending, want 500", n)
	}

	t.Run("invalid batch enqueues nothing", func(t *testing.T) {
		bad := []tasks.Refresh{tasks.Hooked("ok"), tasks.Hooked(""), tasks.BundleSocial("t", "NOPE"), tasks.Hooked("ok2")}
		_, err := f.c.EnqueueMany(ctx, bad, Queue(f.queue2))
		var ib *InvalidBatchError
		if !errors.As(err, &ib) || len(ib.Invalid) != 2 || ib.Invalid[0].Index != 1 || ib.Invalid[1].Index != 2 {
			t.Fatalf("EnqueueMany = %v, want indexes 1 and 2 invalid", err)
		}
		if n := pending(t, f, f.queue2); n != 0 {
			t.Errorf("%d tasks on %s after an invalid batch", n, f.queue2)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		out, err := f.c.EnqueueMany(cctx, []tasks.Refresh{tasks.Hooked("a"), tasks.Hooked("b")}, Queue(f.queue2))
		if !errors.Is(err, ErrStopped) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		for _, o := range out {
			if o.State != NotEnqueued || o.Err == nil {
				t.Errorf("outcome %+v, want NotEnqueued with a reason", o)
			}
		}
	})
}

func TestUniqueSameTaskIDTwice(t *testing.T) {
	// Re-sending an enqueue with its own TaskID (say after an in-doubt
	// failure) must neither count as a duplicate of itself nor free the
	// key the first one took.
	f := setup(t)
	ctx := context.Background()
	acct := f.space.Subject()
	id := "again-" + f.queue
	if _, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), TaskID(id), Unique(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err := f.c.Enqueue(ctx, tasks.Hooked(acct), Queue(f.queue), TaskID(id), Unique(time.Hour))
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatalf("second Enqueue = %v, want ErrTaskIDConflict (the task exists)", err)
	}
	if v, _ := f.rdb.Get(ctx, uniqueKey("hooked", acct)).Result(); v != id {
		t.Errorf("uniqueness key = %q, want it kept for %s", v, id)
	}
}

func TestWithQueues(t *testing.T) {
	c, err := New("redis://127.0.0.1:1", WithQueues("emails", "reports"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Validate(tasks.Hooked("a"), Queue("reports")); err != nil {
		t.Errorf("allowed queue: %v", err)
	}
	if err := c.Validate(tasks.Hooked("a")); err == nil {
		t.Error(`"default" is not among the names, yet it is allowed`)
	}
	for _, bad := range [][]string{nil, {"a b"}, {"x:y"}} {
		if _, err := New("redis://127.0.0.1:1", WithQueues(bad...)); err == nil {
			t.Errorf("WithQueues(%q): no error", bad)
		}
	}
}

// An option given a value it cannot take makes New fail and say why.
func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string
	}{
		{"no queues", WithQueues(), "want one or more"},
		{"bad queue name", WithQueues("a b"), "queue names"},
		{"negative cancel wait", WithCancelWait(-time.Second), "cancel wait -1s is negative"},
		{"empty stream", WithResultsStream(""), "results stream name is empty"},
		{"no concurrency", WithConcurrency(0), "concurrency is 0"},
		{"no task deadline", WithTaskDeadline(0), "task deadline is 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("redis://127.0.0.1:1", tt.opt)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// An enqueue option given a value it cannot take fails the call with an
// *OptionError before anything is written; of several, the first is named.
func TestEnqueueRefusesBadOptions(t *testing.T) {
	c, err := New("redis://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	at := time.Now().Add(time.Hour)
	tests := []struct {
		name string
		opts []EnqueueOption
		want string
	}{
		{"negative delay", []EnqueueOption{In(-time.Second)}, "delay -1s is negative"},
		{"short unique window", []EnqueueOption{Unique(time.Microsecond)}, "unique window 1µs is shorter than 1ms"},
		{"bad traceparent", []EnqueueOption{Traceparent("x")}, `traceparent "x" is not a W3C traceparent`},
		{"empty task id", []EnqueueOption{TaskID("")}, "task id is empty"},
		{"in and at", []EnqueueOption{In(time.Second), At(at)}, "both In and At are set; use one"},
		{"first of several", []EnqueueOption{Unique(0), In(-time.Second), At(at)}, "unique window 0s is shorter than 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			_, err := c.Enqueue(ctx, tasks.Hooked("a"), tt.opts...)
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("Enqueue: %v, want an *OptionError", err)
			}
			if !strings.HasPrefix(oe.Problem, tt.want) {
				t.Errorf("problem %q, want %q", oe.Problem, tt.want)
			}
			if err := c.Validate(tasks.Hooked("a"), tt.opts...); !errors.As(err, &oe) {
				t.Errorf("Validate: %v, want an *OptionError", err)
			}
			if _, err := c.EnqueueMany(ctx, []tasks.Refresh{tasks.Hooked("a")}, tt.opts...); !errors.As(err, &oe) {
				t.Errorf("EnqueueMany: %v, want an *OptionError", err)
			}
		})
	}
}
