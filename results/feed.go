package results

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A feed lets many callers wait for results at the cost of one: a single
// follower reads the stream with XREAD BLOCK and hands each entry to the
// callers waiting for its task id. It runs only while someone waits, so an
// idle process sends Redis nothing.

// feedStep bounds one XREAD BLOCK of the feed. go-redis does not interrupt
// a blocked read when its context ends, so it is how long Close may take;
// while anyone waits and no result lands, the feed costs Redis one XREAD
// per step.
const feedStep = time.Second

// feedCount is how many entries one XREAD of the feed returns at most.
const feedCount = 1000

// retryPause is how long the follower pauses after a Redis error; the
// waiters' own lookups, and the one they make when their ctx ends, report
// what they see.
const retryPause = time.Second

// feed fans the results stream out to waiters by task id.
type feed struct {
	r *Reader

	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	waiters map[string]map[chan redis.XMessage]struct{}
	running bool
	ready   chan struct{} // closed once the running follower knows where to read from
	wg      sync.WaitGroup
}

func newFeed(r *Reader) *feed {
	ctx, stop := context.WithCancel(context.Background())
	return &feed{r: r, ctx: ctx, stop: stop, waiters: map[string]map[chan redis.XMessage]struct{}{}}
}

// close stops the follower and waits for it; waiters return ErrClosed.
func (f *feed) close() {
	f.stop()
	f.wg.Wait()
}

func (f *feed) wait(ctx context.Context, taskID string) (Entry, error) {
	ch := make(chan redis.XMessage, 1)
	ready, err := f.add(taskID, ch)
	if err != nil {
		return Entry{}, err
	}
	defer f.remove(taskID, ch)
	// Once ready, the follower's position is fixed: anything added after
	// it reaches ch, and anything before it is in the index.
	select {
	case <-ready:
		e, err := f.r.Lookup(ctx, taskID)
		if !errors.Is(err, ErrNoResult) {
			return e, err
		}
	case <-ctx.Done():
		return f.last(ctx, taskID)
	case <-f.ctx.Done():
		return Entry{}, ErrClosed
	}
	select {
	case msg := <-ch:
		return FromValues(msg.ID, msg.Values), nil
	case <-ctx.Done():
		return f.last(ctx, taskID)
	case <-f.ctx.Done():
		return Entry{}, ErrClosed
	}
}

// last looks the result up once more after ctx ended: the follower may
// have been held up by a Redis error, and a result that landed is worth
// more than a timeout.
func (f *feed) last(ctx context.Context, taskID string) (Entry, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if e, err := f.r.Lookup(lctx, taskID); err == nil {
		return e, nil
	}
	return Entry{}, ctx.Err()
}

// add registers ch for taskID, starting the follower if none runs, and
// returns a channel closed once the follower has its starting position.
func (f *feed) add(taskID string, ch chan redis.XMessage) (<-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ws := f.waiters[taskID]
	if ws == nil {
		ws = map[chan redis.XMessage]struct{}{}
		f.waiters[taskID] = ws
	}
	ws[ch] = struct{}{}
	if !f.running {
		f.running = true
		f.ready = make(chan struct{})
		f.wg.Add(1)
		go f.follow(f.ready)
	}
	return f.ready, nil
}

func (f *feed) remove(taskID string, ch chan redis.XMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ws := f.waiters[taskID]; ws != nil {
		delete(ws, ch)
		if len(ws) == 0 {
			delete(f.waiters, taskID)
		}
	}
}

// follow reads the stream from its end and hands entries to waiters, until
// no one waits or the feed is closed.
func (f *feed) follow(ready chan struct{}) {
	defer f.wg.Done()
	var last string
	for last == "" {
		id, err := f.r.LastID(f.ctx)
		if err != nil {
			if !f.pause() {
				return
			}
			continue
		}
		last = id
	}
	close(ready)
	for {
		streams, err := f.r.rdb.XRead(f.ctx, &redis.XReadArgs{Streams: []string{f.r.stream, last}, Count: feedCount, Block: feedStep}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if !f.pause() {
				return
			}
		}
		for _, s := range streams {
			for _, msg := range s.Messages {
				last = msg.ID
				f.dispatch(msg)
			}
		}
		if !f.keepGoing() {
			return
		}
	}
}

// pause waits before the next try after a Redis error; false means the
// feed was closed.
func (f *feed) pause() bool {
	select {
	case <-f.ctx.Done():
		return false
	case <-time.After(retryPause):
		return true
	}
}

// keepGoing stops the follower when the feed is closed or no one waits.
func (f *feed) keepGoing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil || len(f.waiters) == 0 {
		f.running = false
		return false
	}
	return true
}

func (f *feed) dispatch(msg redis.XMessage) {
	id, _ := msg.Values[FieldTaskID].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.waiters[id] {
		select {
		case ch <- msg:
		default: // already holds this task's result
		}
	}
}
