package suite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/testenv"
)

// needBullMQ returns the script's runner and a client of a real Redis
// (BullMQ's scripts need one), or ends the test as testenv says where
// Redis, node or the script's packages are missing.
func needBullMQ(t *testing.T) (bullmqScript, *redis.Client) {
	t.Helper()
	url := testenv.RequireRedisURL(t)
	testenv.Program(t, "node", "install Node.js ≥ 18 (.ci/run does)")
	dir, _ := filepath.Abs("../bullmq")
	b := bullmqScript{dir: dir, redisURL: url}
	if err := b.check(); err != nil {
		testenv.Missing(t, "bench/bullmq/node_modules", "run `npm ci` in bench/bullmq (.ci/run does)")
	}
	return b, redistest.Connect(t, url)
}

// TestBullMQScriptDoesTheJob: the BullMQ side of the comparison makes one
// request per job and writes the same result entry as the naive handler,
// so the ratio compares the same work.
func TestBullMQScriptDoesTheJob(t *testing.T) {
	b, rdb := needBullMQ(t)
	ctx := context.Background()
	queue := redistest.Name(t, "bench_bullmq_")
	stream := queue + ":results"
	t.Cleanup(func() {
		_ = cleanupBullMQ(context.Background(), rdb, queue)
		rdb.Del(context.Background(), stream)
	})
	u, err := newUpstream(upstreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	const jobs = 30
	if err := b.enqueue(ctx, queue, jobs); err != nil {
		t.Fatal(err)
	}
	p, err := b.start(queue, stream, u.URL, 5, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	count := func(ctx context.Context) (int64, error) { return rdb.XLen(ctx, stream).Result() }
	if n, err := waitFor(ctx, count, jobs, time.Minute); err != nil {
		t.Fatalf("%d of %d results: %v", n, jobs, err)
	}
	if err := p.stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if n := u.ok.Load(); n != jobs {
		t.Errorf("upstream saw %d requests, want one per job (%d)", n, jobs)
	}
	msgs, err := rdb.XRangeN(ctx, stream, "-", "+", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read entry: %v", err)
	}
	e := msgs[0].Values
	if len(e) != 17 || e["result"] != bundleBody || e["status"] != "succeeded" || e["provider"] != "bundle_social" {
		t.Errorf("entry has %d fields (want the contract's 17), status %v, provider %v, result of %d bytes", len(e), e["status"], e["provider"], len(e["result"].(string)))
	}
	// A job left behind would mean BullMQ kept work the asynq side drops.
	if keys, _ := rdb.Keys(ctx, "bull:"+queue+":[0-9]*").Result(); len(keys) != 0 {
		t.Errorf("%d finished jobs kept in Redis, want none (removeOnComplete)", len(keys))
	}
}
