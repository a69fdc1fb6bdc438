package results_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

func entry(taskID string, status results.Status) results.Entry {
	now := time.Now()
	return results.Entry{
		TaskID: taskID, TaskType: "hooked:account_refresh", Queue: "default",
		Provider: "hooked", Subject: "a1", Status: status, Attempts: 1, HTTPStatus: 200,
		Result: `{"success":true}`, EnqueuedAt: now.Add(-1500 * time.Millisecond), FinishedAt: now, Worker: "h:1",
	}
}

func TestPublishIsOncePerRun(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	stream := redistest.Name(t, "results_")
	t.Cleanup(func() { rdb.Del(ctx, stream, results.IndexKey(stream, "t1")) })
	p := results.NewPublisher(rdb, stream, time.Minute)

	// Many workers finishing the same run at once add one entry.
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := p.Publish(ctx, entry("t1", results.StatusFailed), 1)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if added != 1 {
		t.Fatalf("8 publishes of run 1 added %d entries, want 1", added)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 1 {
		t.Fatalf("stream has %d entries, want 1", n)
	}
	// An operator's re-run is run 2: one more entry, and Lookup sees it.
	if _, ok, err := p.Publish(ctx, entry("t1", results.StatusSucceeded), 2); err != nil || !ok {
		t.Fatalf("publish run 2: added=%v err=%v", ok, err)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 2 {
		t.Fatalf("stream has %d entries after run 2, want 2", n)
	}
	run, status, err := p.Published(ctx, "t1")
	if err != nil || run != 2 || status != results.StatusSucceeded {
		t.Fatalf("Published = %d %q %v, want 2 succeeded", run, status, err)
	}
	e, err := results.NewReader(rdb, stream).Lookup(ctx, "t1")
	if err != nil || e.Status != results.StatusSucceeded {
		t.Fatalf("Lookup = %+v, %v", e, err)
	}
	m := e.Fields
	want := map[string]string{"v": "1", "task_id": "t1", "status": "succeeded", "attempts": "1", "http_status": "200", "meta": "{}", "duration_ms": "1500", "error_kind": ""}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %s = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != 18 {
		t.Errorf("entry has %d fields, want the contract's 18: %v", len(m), m)
	}
}

// TestPublishDeletesDoneKeysOnlyWhenAdded: the keys a publish is given are
// deleted with the entry's XADD, and kept when the run already had its
// entry (nothing was written then).
func TestPublishDeletesDoneKeysOnlyWhenAdded(t *testing.T) {
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	stream := redistest.Name(t, "results_")
	done := stream + ":done"
	t.Cleanup(func() { rdb.Del(ctx, stream, done, results.IndexKey(stream, "t1")) })
	p := results.NewPublisher(rdb, stream, time.Minute)

	for _, tc := range []struct {
		name      string
		wantAdded bool
		wantKept  bool
	}{
		{name: "added", wantAdded: true},
		{name: "already published", wantKept: true},
	} {
		if err := rdb.Set(ctx, done, "state", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		pipe := rdb.Pipeline()
		got := p.PublishPipelined(ctx, pipe, entry("t1", results.StatusSucceeded), 1, done)
		_, _ = pipe.Exec(ctx)
		_, added, err := got()
		if err != nil || added != tc.wantAdded {
			t.Fatalf("%s: added=%v err=%v, want added=%v", tc.name, added, err, tc.wantAdded)
		}
		if n := rdb.Exists(ctx, done).Val(); (n == 1) != tc.wantKept {
			t.Errorf("%s: done key exists=%d, want kept=%v", tc.name, n, tc.wantKept)
		}
	}
}
