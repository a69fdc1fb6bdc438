package results_test

import (
	"context"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

// TestPipelinedPublishIsOncePerRun: through a pipeline, as alone, a run
// gets one entry, including when Redis has forgotten the script (its own
// miniredis, so flushing scripts disturbs no other test).
func TestPipelinedPublishIsOncePerRun(t *testing.T) {
	rdb, _ := redistest.MiniClient(t)
	ctx := context.Background()
	p := results.NewPublisher(rdb, "results", time.Hour)

	publish := func(e results.Entry, run int) (string, bool) {
		pipe := rdb.Pipeline()
		got := p.PublishPipelined(ctx, pipe, e, run)
		_, _ = pipe.Exec(ctx)
		id, added, err := got()
		if err != nil {
			t.Fatal(err)
		}
		return id, added
	}
	published := func(taskID string) (int, results.Status) {
		run, status, err := p.Published(ctx, taskID)
		if err != nil {
			t.Fatal(err)
		}
		return run, status
	}

	if run, _ := published("t1"); run != 0 {
		t.Fatalf("published run %d before any publish, want 0", run)
	}
	rdb.ScriptFlush(ctx) // the first publish finds no script: it must still land once
	first, added := publish(entry("t1", results.StatusSucceeded), 1)
	if !added {
		t.Fatal("first publish not added")
	}
	if again, added := publish(entry("t1", results.StatusSucceeded), 1); added || again != first {
		t.Fatalf("second publish of run 1: added=%v id=%s, want not added and %s", added, again, first)
	}
	if run, status := published("t1"); run != 1 || status != results.StatusSucceeded {
		t.Fatalf("published = %d %q, want 1 succeeded", run, status)
	}
	if _, added := publish(entry("t1", results.StatusFailed), 2); !added {
		t.Fatal("run 2 not added")
	}
	if n := rdb.XLen(ctx, "results").Val(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}
