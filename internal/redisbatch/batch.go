package redisbatch

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("redisbatch: closed")

// DefaultMaxBatch bounds the calls in one pipeline, so one batch's reply
// never grows without bound behind a burst.
const DefaultMaxBatch = 256

// DefaultFlushers is how many pipelines may be in flight at once. With one,
// a call that arrives just after a batch left waits for that batch's round
// trip before its own goes out; with a few, it goes out at once on another
// connection, and calls share a pipeline only when every flusher is busy,
// which is when sharing saves the most.
const DefaultFlushers = 4

// Options tune a Batcher; zero values take the defaults.
type Options struct {
	MaxBatch int // calls in one pipeline at most
	Flushers int // pipelines in flight at once at most
}

// Batcher sends its callers' commands in shared pipelines. It is safe for
// concurrent use; Close it when done.
type Batcher struct {
	rdb      redis.UniversalClient
	max      int
	reqs     chan *call
	stop     chan struct{}
	stopped  chan struct{}
	stopOnce sync.Once
}

type call struct {
	ctx   context.Context
	queue func(redis.Pipeliner)
	done  chan error // buffered: the sender never waits for a caller gone
	sent  bool       // queued on the batch's pipeline (set by the loop)
}

// New starts a Batcher on rdb.
func New(rdb redis.UniversalClient, opt Options) *Batcher {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	if opt.Flushers <= 0 {
		opt.Flushers = DefaultFlushers
	}
	b := &Batcher{
		rdb:     rdb,
		max:     opt.MaxBatch,
		reqs:    make(chan *call, opt.MaxBatch),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range opt.Flushers {
		wg.Go(b.loop)
	}
	go func() {
		wg.Wait()
		close(b.stopped)
	}()
	return b
}

// Do runs queue, which adds the caller's commands to a pipeline, and
// returns once the pipeline carrying them has been sent and read back.
// queue runs on the Batcher's goroutine: it only queues commands and
// keeps the returned *Cmd values; the caller reads their results after
// Do returns nil. A non-nil error means the commands' replies must not
// be read: ctx ended (the commands may still run, as with any request
// whose reply was not waited for) or the Batcher was closed.
func (b *Batcher) Do(ctx context.Context, queue func(redis.Pipeliner)) error {
	c := &call{ctx: ctx, queue: queue, done: make(chan error, 1)}
	select {
	case b.reqs <- c:
	case <-b.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stopped:
		// The flushers send every call they took before they stop; one
		// that slipped into the queue as they stopped is never sent.
		select {
		case err := <-c.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// Close sends what is queued and stops. Calls after Close return
// ErrClosed.
func (b *Batcher) Close() {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.stopped
}

// loop is one flusher: it takes the first call that comes, adds what
// queued behind it, and sends them.
func (b *Batcher) loop() {
	batch := make([]*call, 0, b.max)
	for {
		select {
		case c := <-b.reqs:
			batch = append(batch, c)
		case <-b.stop:
			b.drain(batch)
			return
		}
		batch = b.fill(batch)
		b.flush(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// fill adds what is already waiting, up to the batch limit.
func (b *Batcher) fill(batch []*call) []*call {
	for len(batch) < b.max {
		select {
		case c := <-b.reqs:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

// drain sends what was queued before Close.
func (b *Batcher) drain(batch []*call) {
	for {
		batch = b.fill(batch)
		if len(batch) == 0 {
			return
		}
		b.flush(batch)
		clear(batch)
		batch = batch[:0]
	}
}

func (b *Batcher) flush(batch []*call) {
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- err // never sent: the caller has gone
			continue
		}
		c.queue(pipe)
		c.sent = true
	}
	if pipe.Len() > 0 {
		// Each command carries its own error, a failed send included;
		// the callers read them. The batch is not bound to any one
		// caller's context: it runs under the client's timeouts.
		_, _ = pipe.Exec(context.Background())
	}
	for _, c := range batch {
		if c.sent {
			c.done <- nil
		}
	}
}

// Runner runs a caller's queued commands in one round trip: a Batcher
// shares it with other callers, Direct sends it alone. Callers are written
// once against Runner and behave the same on either.
type Runner interface {
	Do(ctx context.Context, queue func(redis.Pipeliner)) error
}

// Direct is a Runner that sends each call's commands as a pipeline of its
// own, for a process with few tasks in flight or none to share with.
type Direct struct{ RDB redis.UniversalClient }

// Do sends queue's commands and returns once their replies are read.
// Errors are the commands' own, as with Batcher.Do.
func (d Direct) Do(ctx context.Context, queue func(redis.Pipeliner)) error {
	pipe := d.RDB.Pipeline()
	queue(pipe)
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx)
	}
	return ctx.Err()
}
