package resultfeed

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter counts the commands a client sends, by name.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd.Name())
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.add(cmd.Name())
		}
		return next(ctx, cmds)
	}
}
func (c *counter) add(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}
func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

type fixture struct {
	feed   *Feed
	pub    *results.Publisher
	stream string
	cmds   *counter
}

func setup(t *testing.T) *fixture {
	t.Helper()
	rdb, _ := redistest.Client(t)
	stream := redistest.Name(t, "test:feed:")
	// The feed's own client, so only its commands are counted.
	opt := rdb.(*redis.Client).Options()
	own := redis.NewClient(opt)
	cmds := &counter{n: map[string]int{}}
	own.AddHook(cmds)
	f := &fixture{feed: New(own, stream, nil), pub: results.NewPublisher(rdb, stream, time.Hour), stream: stream, cmds: cmds}
	t.Cleanup(func() {
		f.feed.Close()
		own.Close()
		keys, _ := rdb.Keys(context.Background(), stream+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
	})
	return f
}

func (f *fixture) publish(t testing.TB, id string) {
	t.Helper()
	now := time.Now()
	e := results.Entry{TaskID: id, Status: results.StatusSucceeded, EnqueuedAt: now, FinishedAt: now}
	if _, _, err := f.pub.Publish(context.Background(), e, 1); err != nil {
		t.Fatal(err)
	}
}

func TestWait(t *testing.T) {
	f := setup(t)
	t.Run("result landed before", func(t *testing.T) {
		f.publish(t, "early")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, m, err := f.feed.Wait(ctx, "early")
		if err != nil || e.TaskID != "early" || m["task_id"] != "early" {
			t.Fatalf("%+v %v %v", e, m, err)
		}
	})
	t.Run("result lands while waiting", func(t *testing.T) {
		go func() { time.Sleep(200 * time.Millisecond); f.publish(t, "later") }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		e, _, err := f.feed.Wait(ctx, "later")
		if err != nil || e.TaskID != "later" || time.Since(start) > 3*time.Second {
			t.Fatalf("%+v %v after %s", e, err, time.Since(start))
		}
	})
	t.Run("times out with ctx's error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, _, err := f.feed.Wait(ctx, "never"); err != context.DeadlineExceeded {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("follower stops when no one waits", func(t *testing.T) {
		time.Sleep(2 * blockStep)
		before := f.cmds.get("xread")
		time.Sleep(2 * blockStep)
		if n := f.cmds.get("xread") - before; n != 0 {
			t.Errorf("%d XREADs with no one waiting, want 0", n)
		}
	})
}

// TestThousandWaiters measures what 1,000 concurrent waiters cost: the
// Redis commands they send (one index lookup each; one shared XREAD per
// blockStep) and the memory they hold. docs/producers.md quotes it.
func TestThousandWaiters(t *testing.T) {
	f := setup(t)
	const n = 1000
	var (
		wg   sync.WaitGroup
		got  atomic.Int64
		errs = make(chan error, n)
	)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, _, err := f.feed.Wait(ctx, fmt.Sprintf("task-%d", i))
			if err != nil {
				errs <- err
				return
			}
			if e.TaskID != fmt.Sprintf("task-%d", i) {
				errs <- fmt.Errorf("waiter %d got %s", i, e.TaskID)
				return
			}
			got.Add(1)
		}()
	}
	for f.feed.Waiters() < n || f.cmds.get("hget") < n {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	perWaiter := (int64(during.HeapInuse+during.StackInuse) - int64(before.HeapInuse+before.StackInuse)) / n
	xreadsAtStart := f.cmds.get("xread")
	const idle = 3 * time.Second
	time.Sleep(idle)
	xreads := f.cmds.get("xread") - xreadsAtStart
	t.Logf("%d waiters: %d goroutines, about %d bytes of heap and stack each; Redis: %d HGET to start, %d XREAD in %s idle",
		n, runtime.NumGoroutine()-goroutines, perWaiter, f.cmds.get("hget"), xreads, idle)
	if max := int(idle/blockStep) + 2; xreads > max {
		t.Errorf("%d XREADs in %s for %d waiters, want at most %d: the waiters must share one reader", xreads, idle, n, max)
	}
	if lookups := f.cmds.get("hget"); lookups != n {
		t.Errorf("%d HGETs, want one index lookup per waiter (%d)", lookups, n)
	}

	start := time.Now()
	for i := range n {
		f.publish(t, fmt.Sprintf("task-%d", i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("all %d results delivered %s after the first was published; %d XREAD in all", n, time.Since(start).Round(time.Millisecond), f.cmds.get("xread"))
	if got.Load() != n {
		t.Fatalf("%d of %d waiters got their result", got.Load(), n)
	}
}
