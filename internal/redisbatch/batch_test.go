package redisbatch

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gate is a go-redis hook that counts pipelines and can hold the first
// one until released, so a test knows which calls share a batch.
type gate struct {
	pipelines atomic.Int32
	cmds      atomic.Int32
	hold      chan struct{} // nil: never hold
	held      chan struct{} // closed when the first pipeline is held
	once      sync.Once
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if g.pipelines.Add(1) == 1 && g.hold != nil {
			g.once.Do(func() { close(g.held) })
			<-g.hold
		}
		g.cmds.Add(int32(len(cmds)))
		return next(ctx, cmds)
	}
}

// setup gives a Batcher with one flusher, so that which calls share a
// pipeline is decided by the test holding that flusher's batch.
func setup(t *testing.T, g *gate) (*Batcher, *redis.Client, string) {
	t.Helper()
	rdb, _ := redistest.Client(t)
	c := rdb.(*redis.Client)
	// A new connection's set-up is a pipeline of its own: make it now,
	// before the hook counts pipelines.
	if _, err := c.Pipelined(context.Background(), func(p redis.Pipeliner) error { return p.Ping(context.Background()).Err() }); err != nil {
		t.Fatal(err)
	}
	if g != nil {
		c.AddHook(g)
	}
	key := redistest.Name(t, "refreshq:test:batch")
	t.Cleanup(func() { c.Del(context.Background(), key, key+":str") })
	b := New(c, Options{Flushers: 1})
	t.Cleanup(b.Close)
	return b, c, key
}

// setupHeld is setup with the flusher's first batch (a PING) held in
// flight, so the calls a test makes next queue behind it until it closes
// g.hold.
func setupHeld(t *testing.T) (*Batcher, *redis.Client, string, *gate) {
	t.Helper()
	g := &gate{hold: make(chan struct{}), held: make(chan struct{})}
	b, c, key := setup(t, g)
	ctx := context.Background()
	go func() { _ = b.Do(ctx, func(p redis.Pipeliner) { p.Ping(ctx) }) }()
	<-g.held
	return b, c, key, g
}

// waitQueued waits until n calls wait for a flusher.
func waitQueued(b *Batcher, n int) {
	for len(b.reqs) < n {
		time.Sleep(time.Millisecond)
	}
}

func TestCallsWaitingTogetherShareOnePipeline(t *testing.T) {
	g := &gate{hold: make(chan struct{}), held: make(chan struct{})}
	b, _, key := setup(t, g)
	ctx := context.Background()

	// The first call's pipeline is held in flight; the next 20 queue
	// behind it and must leave together in the second.
	first := make(chan int64, 1)
	go func() {
		var cmd *redis.IntCmd
		if err := b.Do(ctx, func(p redis.Pipeliner) { cmd = p.Incr(ctx, key) }); err != nil {
			t.Error(err)
		}
		first <- cmd.Val()
	}()
	<-g.held

	const n = 20
	var wg sync.WaitGroup
	got := make([]int64, n)
	var queued atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cmd *redis.IntCmd
			queued.Add(1)
			if err := b.Do(ctx, func(p redis.Pipeliner) { cmd = p.Incr(ctx, key) }); err != nil {
				t.Error(err)
				return
			}
			got[i] = cmd.Val()
		}()
	}
	for queued.Load() < n || len(b.reqs) < n {
		time.Sleep(time.Millisecond)
	}
	close(g.hold)
	wg.Wait()

	if v := <-first; v != 1 {
		t.Errorf("first call's INCR = %d, want 1", v)
	}
	if p := g.pipelines.Load(); p != 2 {
		t.Errorf("%d pipelines for 1 + %d calls queued behind it, want 2", p, n)
	}
	// Every caller got its own reply: the values 2..21, each once.
	seen := map[int64]bool{}
	for _, v := range got {
		if v < 2 || v > n+1 || seen[v] {
			t.Fatalf("replies %v: want each of 2..%d once", got, n+1)
		}
		seen[v] = true
	}
}

func TestOneCallsErrorDoesNotSpillIntoAnother(t *testing.T) {
	b, c, key, g := setupHeld(t)
	ctx := context.Background()
	if err := c.Set(ctx, key+":str", "not a number", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var bad, good *redis.IntCmd
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := b.Do(ctx, func(p redis.Pipeliner) { bad = p.Incr(ctx, key+":str") }); err != nil {
			t.Error(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := b.Do(ctx, func(p redis.Pipeliner) { good = p.Incr(ctx, key) }); err != nil {
			t.Error(err)
		}
	}()
	waitQueued(b, 2)
	close(g.hold)
	wg.Wait()

	if g.pipelines.Load() != 2 {
		t.Fatalf("%d pipelines, want the two calls in one", g.pipelines.Load())
	}
	if bad.Err() == nil {
		t.Error("INCR of a string succeeded")
	}
	if good.Err() != nil || good.Val() != 1 {
		t.Errorf("the other call in the batch: %d, %v; want 1, nil", good.Val(), good.Err())
	}
}

func TestCancelledCallIsNotSent(t *testing.T) {
	b, c, key, g := setupHeld(t)
	ctx := context.Background()

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- b.Do(cctx, func(p redis.Pipeliner) { p.Incr(ctx, key) }) }()
	waitQueued(b, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Do with its context cancelled = %v, want context.Canceled", err)
	}
	close(g.hold)
	// A later call flushes after the cancelled one was dropped.
	if err := b.Do(ctx, func(p redis.Pipeliner) { p.Ping(ctx) }); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Errorf("key of the cancelled call exists = %d (%v): it was sent", n, err)
	}
}

func TestCloseSendsWhatIsQueuedThenRefuses(t *testing.T) {
	b, c, key, g := setupHeld(t)
	ctx := context.Background()

	errc := make(chan error, 1)
	go func() { errc <- b.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, key) }) }()
	waitQueued(b, 1)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(g.hold)
	<-closed
	if err := <-errc; err != nil {
		t.Errorf("call queued before Close = %v, want it sent", err)
	}
	if v, err := c.Get(ctx, key).Int(); err != nil || v != 1 {
		t.Errorf("key = %d (%v), want 1", v, err)
	}
	if err := b.Do(ctx, func(p redis.Pipeliner) { p.Incr(ctx, key) }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close = %v, want ErrClosed", err)
	}
}

func TestRedisDownFailsEachCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, DialerRetries: 1})
	defer c.Close()
	b := New(c, Options{})
	defer b.Close()
	ctx := context.Background()

	var cmd *redis.StatusCmd
	if err := b.Do(ctx, func(p redis.Pipeliner) { cmd = p.Ping(ctx) }); err != nil {
		t.Fatalf("Do = %v; a failed send is the command's error, not Do's", err)
	}
	if cmd.Err() == nil {
		t.Error("PING to a closed port succeeded")
	}
}

// TestACallDoesNotWaitBehindABusyFlusher: with a batch held in flight, a
// second flusher sends the next call at once.
func TestACallDoesNotWaitBehindABusyFlusher(t *testing.T) {
	rdb, _ := redistest.Client(t)
	c := rdb.(*redis.Client)
	ctx := context.Background()
	// Both flushers' connections exist before the hook counts pipelines.
	var warm sync.WaitGroup
	for range 2 {
		warm.Go(func() { _, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }) })
	}
	warm.Wait()
	g := &gate{hold: make(chan struct{}), held: make(chan struct{})}
	c.AddHook(g)
	b := New(c, Options{Flushers: 2})
	defer b.Close()
	defer close(g.hold)

	go func() { _ = b.Do(ctx, func(p redis.Pipeliner) { p.Ping(ctx) }) }()
	<-g.held
	done := make(chan error, 1)
	var cmd *redis.StatusCmd
	go func() { done <- b.Do(ctx, func(p redis.Pipeliner) { cmd = p.Ping(ctx) }) }()
	select {
	case err := <-done:
		if err != nil || cmd.Val() != "PONG" {
			t.Fatalf("second call: %q, %v", cmd.Val(), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second call waited behind the batch held in flight")
	}
}
