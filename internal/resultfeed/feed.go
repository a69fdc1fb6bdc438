package resultfeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
)

// blockStep bounds one XREAD BLOCK. go-redis does not interrupt a blocked
// read when its context ends, so it is how long Close may take; while
// anyone waits and no result lands, the feed costs Redis one XREAD per step.
const blockStep = time.Second

// readCount is how many entries one XREAD returns at most.
const readCount = 1000

// retryPause is how long the follower pauses after a Redis error.
const retryPause = time.Second

// ErrClosed is returned by Wait once the Feed is closed.
var ErrClosed = errors.New("result feed closed")

// Feed fans the results stream out to waiters by task id. It is safe for
// concurrent use.
type Feed struct {
	rdb    redis.UniversalClient
	stream string
	reader *results.Reader
	log    *slog.Logger

	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	waiters map[string]map[chan redis.XMessage]struct{}
	running bool
	ready   chan struct{} // closed once the running follower knows where to read from
	wg      sync.WaitGroup
}

// New returns a Feed of stream. A nil logger logs nothing. Close it when
// done.
func New(rdb redis.UniversalClient, stream string, logger *slog.Logger) *Feed {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Feed{
		rdb: rdb, stream: stream, reader: results.NewReader(rdb, stream), log: logger,
		ctx: ctx, stop: stop, waiters: map[string]map[chan redis.XMessage]struct{}{},
	}
}

// Close stops the follower and waits for it; waiters return ErrClosed.
func (f *Feed) Close() {
	f.stop()
	f.wg.Wait()
}

// Waiters is how many callers are waiting now.
func (f *Feed) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, ws := range f.waiters {
		n += len(ws)
	}
	return n
}

// Wait blocks until taskID has a result and returns it, however early the
// result landed, or returns ctx's error when ctx ends first. Its own cost
// to Redis is one index lookup at the start and one at the end when it
// timed out; the reading is shared.
func (f *Feed) Wait(ctx context.Context, taskID string) (results.Entry, results.Map, error) {
	ch := make(chan redis.XMessage, 1)
	ready, err := f.add(taskID, ch)
	if err != nil {
		return results.Entry{}, nil, err
	}
	defer f.remove(taskID, ch)
	// The follower's position is now fixed: anything added after it
	// reaches ch, and anything before it is in the index.
	select {
	case <-ready:
		e, m, err := f.reader.Lookup(ctx, taskID)
		if !errors.Is(err, results.ErrNoResult) {
			return e, m, err
		}
	case <-ctx.Done():
		return f.last(ctx, taskID)
	case <-f.ctx.Done():
		return results.Entry{}, nil, ErrClosed
	}
	select {
	case msg := <-ch:
		e, m := results.FromValues(msg.ID, msg.Values)
		return e, m, nil
	case <-ctx.Done():
		return f.last(ctx, taskID)
	case <-f.ctx.Done():
		return results.Entry{}, nil, ErrClosed
	}
}

// last looks the result up once more after ctx ended: the follower may
// have been held up by a Redis error, and a result that landed is worth
// more than a timeout.
func (f *Feed) last(ctx context.Context, taskID string) (results.Entry, results.Map, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if e, m, err := f.reader.Lookup(lctx, taskID); err == nil {
		return e, m, nil
	}
	return results.Entry{}, nil, ctx.Err()
}

// add registers ch for taskID, starting the follower if none runs, and
// returns a channel closed once the follower has its starting position.
func (f *Feed) add(taskID string, ch chan redis.XMessage) (<-chan struct{}, error) {
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

func (f *Feed) remove(taskID string, ch chan redis.XMessage) {
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
// no one waits or the Feed is closed.
func (f *Feed) follow(ready chan struct{}) {
	defer f.wg.Done()
	var last string
	for last == "" {
		id, err := f.reader.LastID(f.ctx)
		if err != nil {
			if !f.pause(err) {
				return
			}
			continue
		}
		last = id
	}
	close(ready)
	for {
		streams, err := f.rdb.XRead(f.ctx, &redis.XReadArgs{Streams: []string{f.stream, last}, Count: readCount, Block: blockStep}).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			if !f.pause(err) {
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

// pause logs a Redis error and waits before the next try; false means
// the Feed was closed.
func (f *Feed) pause(err error) bool {
	if f.ctx.Err() != nil {
		return false
	}
	f.log.Warn("read results stream for waiters", "stream", f.stream, "err", fmt.Sprint(err))
	select {
	case <-f.ctx.Done():
		return false
	case <-time.After(retryPause):
		return true
	}
}

// keepGoing stops the follower when the Feed is closed or no one waits.
func (f *Feed) keepGoing() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil || len(f.waiters) == 0 {
		f.running = false
		return false
	}
	return true
}

func (f *Feed) dispatch(msg redis.XMessage) {
	id, _ := msg.Values[results.FieldTaskID].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.waiters[id] {
		select {
		case ch <- msg:
		default: // already holds this task's result
		}
	}
}
