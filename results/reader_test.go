package results_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
)

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

// stream is what a reader test needs: a stream of its own, a publisher,
// and a reader whose Redis commands are counted.
type stream struct {
	rdb    redis.UniversalClient
	name   string
	pub    *results.Publisher
	reader *results.Reader
	cmds   *counter
}

func setup(t *testing.T) *stream {
	t.Helper()
	rdb, _ := redistest.Client(t)
	s := &stream{rdb: rdb, name: redistest.Name(t, "test:results:"), cmds: &counter{n: map[string]int{}}}
	// The reader's own client, so that only its commands are counted.
	own := redis.NewClient(rdb.(*redis.Client).Options())
	own.AddHook(s.cmds)
	s.pub = results.NewPublisher(rdb, s.name, time.Hour)
	s.reader = results.NewReader(own, s.name)
	t.Cleanup(func() {
		s.reader.Close()
		own.Close()
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, s.name+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return s
}

// publish adds a result as the worker would and returns its entry id.
func (s *stream) publish(t testing.TB, taskID string, status results.Status) string {
	t.Helper()
	e := entry(taskID, status)
	if status == results.StatusFailed {
		e.ErrorKind, e.Error = results.KindNotFound, "account not found"
	}
	id, _, err := s.pub.Publish(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLookup(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if _, err := s.reader.Lookup(ctx, "none"); !errors.Is(err, results.ErrNoResult) {
		t.Fatalf("Lookup of a task without a result = %v, want ErrNoResult", err)
	}
	s.publish(t, "t1", results.StatusSucceeded)
	e, err := s.reader.Lookup(ctx, "t1")
	if err != nil || e.TaskID != "t1" || e.Fields[results.FieldStatus] != "succeeded" {
		t.Fatalf("Lookup = %+v, %v", e, err)
	}
}

func TestWait(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	t.Run("result landed before", func(t *testing.T) {
		s.publish(t, "early", results.StatusSucceeded)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		e, err := s.reader.Wait(wctx, "early")
		if err != nil || e.TaskID != "early" || e.Fields[results.FieldTaskID] != "early" {
			t.Fatalf("Wait = %+v, %v", e, err)
		}
	})
	t.Run("result lands while waiting", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			s.publish(t, "other", results.StatusSucceeded)
			s.publish(t, "late", results.StatusFailed)
		}()
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		start := time.Now()
		e, err := s.reader.Wait(wctx, "late")
		if err != nil || e.TaskID != "late" || e.Status != results.StatusFailed {
			t.Fatalf("Wait = %+v, %v", e, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Wait took %s; want it to return as the result lands", d)
		}
	})
	t.Run("times out with ctx's error", func(t *testing.T) {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := s.reader.Wait(wctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("Wait with a 300ms timeout took %s", d)
		}
	})
	t.Run("reading stops when no one waits", func(t *testing.T) {
		time.Sleep(2 * results.FeedStep)
		before := s.cmds.get("xread")
		time.Sleep(2 * results.FeedStep)
		if n := s.cmds.get("xread") - before; n != 0 {
			t.Errorf("%d XREADs with no one waiting, want 0", n)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r := results.NewReader(s.rdb, s.name)
		r.Close()
		if _, err := r.Wait(ctx, "early"); !errors.Is(err, results.ErrClosed) {
			t.Fatalf("Wait on a closed Reader = %v, want ErrClosed", err)
		}
	})
}

// TestThousandWaiters measures what 1,000 concurrent waiters cost: the
// Redis commands they send (one index lookup each; one shared XREAD per
// FeedStep) and the memory they hold. docs/producers.md quotes it.
func TestThousandWaiters(t *testing.T) {
	s := setup(t)
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
			e, err := s.reader.Wait(ctx, fmt.Sprintf("task-%d", i))
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
	// A waiter looks its result up once it is registered with the feed.
	for s.cmds.get("hget") < n {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	perWaiter := (int64(during.HeapInuse+during.StackInuse) - int64(before.HeapInuse+before.StackInuse)) / n
	xreadsAtStart := s.cmds.get("xread")
	const idle = 3 * time.Second
	time.Sleep(idle)
	xreads := s.cmds.get("xread") - xreadsAtStart
	t.Logf("%d waiters: %d goroutines, about %d bytes of heap and stack each; Redis: %d HGET to start, %d XREAD in %s idle",
		n, runtime.NumGoroutine()-goroutines, perWaiter, s.cmds.get("hget"), xreads, idle)
	if max := int(idle/results.FeedStep) + 2; xreads > max {
		t.Errorf("%d XREADs in %s for %d waiters, want at most %d: the waiters must share one reader", xreads, idle, n, max)
	}
	if lookups := s.cmds.get("hget"); lookups != n {
		t.Errorf("%d HGETs, want one index lookup per waiter (%d)", lookups, n)
	}

	start := time.Now()
	for i := range n {
		s.publish(t, fmt.Sprintf("task-%d", i), results.StatusSucceeded)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("all %d results delivered %s after the first was published; %d XREAD in all", n, time.Since(start).Round(time.Millisecond), s.cmds.get("xread"))
	if got.Load() != n {
		t.Fatalf("%d of %d waiters got their result", got.Load(), n)
	}
}

// TestFollowPassesFieldsOn: Follow hands fn every entry after from, in
// order, with every field as stored, those of a later schema version
// included, and returns fn's error.
func TestFollowPassesFieldsOn(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := s.publish(t, "a", results.StatusSucceeded)
	s.publish(t, "b", results.StatusFailed)
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.name, Values: []string{"v", "2", "task_id", "c", "region", "eu"}}).Err(); err != nil {
		t.Fatal(err)
	}
	var got []results.Entry
	enough := errors.New("enough")
	err := s.reader.Follow(ctx, first, func(ctx context.Context, e results.Entry) error {
		got = append(got, e)
		if len(got) == 2 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) {
		t.Fatalf("Follow = %v, want fn's error", err)
	}
	if got[0].TaskID != "b" || got[0].ErrorKind != results.KindNotFound || got[0].Fields[results.FieldErrorKind] != "not_found" {
		t.Errorf("first entry after %s = %+v, want b, not_found", first, got[0])
	}
	if got[1].TaskID != "c" || got[1].Fields["region"] != "eu" || got[1].Fields["v"] != "2" {
		t.Errorf("entry of a later schema = %+v, want its unknown field region=eu kept in Fields", got[1])
	}

	t.Run("ends with ctx", func(t *testing.T) {
		fctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err := s.reader.Follow(fctx, "$", func(context.Context, results.Entry) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Follow = %v, want context.DeadlineExceeded", err)
		}
	})
}
