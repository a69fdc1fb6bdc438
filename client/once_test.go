package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

func TestEnqueueOnce(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	acct := f.space.Subject()
	r := tasks.Hooked(acct)
	r.Queue = f.queue
	r.Meta = []byte(`{"a":1,"b":[1,2]}`)

	existing, err := f.c.EnqueueOnce(ctx, "once-1", r, Deadline(time.Now().Add(time.Hour)))
	if err != nil || existing {
		t.Fatalf("first: existing=%v err=%v, want a new task", existing, err)
	}
	same := r
	same.Meta = []byte(`{ "b":[1,2], "a":1 }`)
	if existing, err := f.c.EnqueueOnce(ctx, "once-1", same, In(time.Minute)); err != nil || !existing {
		t.Fatalf("same refresh again: existing=%v err=%v, want the existing task", existing, err)
	}
	for name, other := range map[string]tasks.Refresh{
		"other subject": {Provider: tasks.ProviderHooked, AccountID: acct + "x", Queue: f.queue, Meta: r.Meta},
		"other queue":   {Provider: tasks.ProviderHooked, AccountID: acct, Queue: f.queue2, Meta: r.Meta},
		"other meta":    {Provider: tasks.ProviderHooked, AccountID: acct, Queue: f.queue, Meta: []byte(`{"a":2}`)},
	} {
		_, err := f.c.EnqueueOnce(ctx, "once-1", other)
		var taken *TaskIDTakenError
		if !errors.As(err, &taken) || !errors.Is(err, ErrTaskIDTaken) || taken.TaskID != "once-1" {
			t.Errorf("%s: err = %v, want a *TaskIDTakenError", name, err)
		}
	}
	if n, _ := f.insp.GetQueueInfo(f.queue); n == nil || n.Size != 1 {
		t.Errorf("queue holds %+v, want the one task", n)
	}

	t.Run("an id used without EnqueueOnce is taken", func(t *testing.T) {
		if _, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue2), TaskID("plain-1")); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.EnqueueOnce(ctx, "plain-1", r); !errors.Is(err, ErrTaskIDTaken) {
			t.Errorf("err = %v, want ErrTaskIDTaken", err)
		}
		// The refused call left no claim behind: once the task is gone
		// (and has no result), the id is free.
		if err := f.insp.DeleteTask(f.queue2, "plain-1"); err != nil {
			t.Fatal(err)
		}
		if existing, err := f.c.EnqueueOnce(ctx, "plain-1", r); err != nil || existing {
			t.Errorf("existing=%v err=%v, want a new task", existing, err)
		}
	})
	t.Run("an id with a result is taken", func(t *testing.T) {
		e := results.Entry{TaskID: "ended-1", Status: results.StatusSucceeded, EnqueuedAt: time.Now(), FinishedAt: time.Now()}
		if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(ctx, e, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.EnqueueOnce(ctx, "ended-1", r); !errors.Is(err, ErrTaskIDTaken) {
			t.Errorf("err = %v, want ErrTaskIDTaken", err)
		}
	})
	t.Run("invalid input claims nothing", func(t *testing.T) {
		for _, id := range []string{"", "has space", "a/b"} {
			if _, err := f.c.EnqueueOnce(ctx, id, r); err == nil {
				t.Errorf("id %q accepted", id)
			}
		}
		bad := tasks.Hooked("")
		if _, err := f.c.EnqueueOnce(ctx, "bad-1", bad); err == nil {
			t.Fatal("invalid refresh accepted")
		}
		if n, _ := f.rdb.Exists(ctx, claimKey(f.stream, "bad-1")).Result(); n != 0 {
			t.Error("an invalid refresh left a claim on its id")
		}
	})
}

func TestTaskState(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	now, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue2))
	if err != nil {
		t.Fatal(err)
	}
	later, err := f.c.Enqueue(ctx, tasks.Hooked(f.space.Subject()), Queue(f.queue), In(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]TaskState{now: StatePending, later: StateScheduled, "nobody": StateUnknown} {
		if got, err := f.c.TaskState(ctx, id); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", id, got, err, want)
		}
	}
}

func TestClaimOutlivesTheTask(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	index := results.DefaultIndexTTL + claimSlack
	for _, tc := range []struct {
		name     string
		s        enqueueSettings
		deadline time.Time
		want     time.Duration
	}{
		{"due now", enqueueSettings{}, time.Time{}, 48*time.Hour + index},
		{"due in 2h", enqueueSettings{in: 2 * time.Hour, hasIn: true}, time.Time{}, 50*time.Hour + index},
		{"due at a time", enqueueSettings{at: now.Add(time.Hour)}, time.Time{}, 49*time.Hour + index},
		{"deadline sooner", enqueueSettings{}, now.Add(3 * time.Hour), 3*time.Hour + index},
	} {
		if got := claimTTL(&tc.s, tc.deadline, 48*time.Hour, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// Two refreshes that differ in any one subject field of any provider have
// different fingerprints, so EnqueueOnce never takes one for the other.
// fingerprint lists the subject fields by hand, and the claims already in
// Redis hold its output, so a provider with a new subject field must be
// added to it without changing what it gives for the others.
func TestFingerprintCoversEverySubjectField(t *testing.T) {
	for _, p := range tasks.Providers() {
		keys := tasks.SubjectFields(p)
		subject := func(changed string) map[string]string {
			m := map[string]string{}
			for _, k := range keys {
				m[k] = "a"
			}
			if changed != "" {
				m[changed] = "b"
			}
			return m
		}
		fp := func(m map[string]string) string {
			t.Helper()
			r, err := tasks.NewRefresh(p, m)
			if err != nil {
				t.Fatal(err)
			}
			s, err := fingerprint(r)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		base := fp(subject(""))
		for _, k := range keys {
			if fp(subject(k)) == base {
				t.Errorf("%s refreshes differing only in %s have the same fingerprint", p, k)
			}
		}
	}
}

// The fingerprint of a refresh does not change, or claims made before the
// change would no longer match their own refresh.
func TestFingerprintIsStable(t *testing.T) {
	r := tasks.BundleSocial("team", "instagram")
	r.Queue, r.Meta, r.Tenant = "default", json.RawMessage(`{"b": 1, "a": "x"}`), "acme"
	got, err := fingerprint(r)
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of ["bundle_social","team","instagram","","default",{"a":"x","b":1},"acme"]
	const want = "d28088431978531e70ec96c42de670cc1dcbed382947e3586fd4063d36a6998a"
	if got != want {
		t.Errorf("fingerprint %s, want %s", got, want)
	}
}
