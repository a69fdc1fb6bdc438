package results

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoResult is returned by Lookup when a task has no result yet (or its
// result has expired from the index).
var ErrNoResult = errors.New("no result yet")

// ErrClosed is returned by Wait once the Reader is closed.
var ErrClosed = errors.New("results reader closed")

// Reader reads results: one by task id, waiting for one, all as they land,
// or as a consumer group. It is safe for concurrent use; Close it when done
// if it may have waited.
type Reader struct {
	rdb    redis.UniversalClient
	stream string
	feed   *feed
}

// NewReader returns a Reader of stream. It sends Redis nothing until it is
// used.
func NewReader(rdb redis.UniversalClient, stream string) *Reader {
	r := &Reader{rdb: rdb, stream: stream}
	r.feed = newFeed(r)
	return r
}

// Close stops the reading that concurrent Waits share and waits for it to
// end; Waits still running return ErrClosed. It does not close rdb.
func (r *Reader) Close() error {
	r.feed.close()
	return nil
}

// Lookup returns a task's latest result, or ErrNoResult.
func (r *Reader) Lookup(ctx context.Context, taskID string) (Entry, error) {
	id, err := r.rdb.HGet(ctx, IndexKey(r.stream, taskID), indexEntry).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrNoResult
	}
	if err != nil {
		return Entry{}, fmt.Errorf("look up result of task %s: %w", taskID, err)
	}
	msgs, err := r.rdb.XRange(ctx, r.stream, id, id).Result()
	if err != nil {
		return Entry{}, fmt.Errorf("read result %s of task %s: %w", id, taskID, err)
	}
	if len(msgs) == 0 {
		// The index outlived the entry: the stream was trimmed past it.
		return Entry{}, ErrNoResult
	}
	return FromValues(msgs[0].ID, msgs[0].Values), nil
}

// Wait blocks until taskID has a result and returns it, however early the
// result landed, or returns ctx's error when ctx ends first: give ctx a
// timeout. Concurrent Waits on one Reader share a single blocking read of
// the stream, so thousands of waiters cost Redis about what one does: each
// adds one index lookup at its start, and one more when it times out.
func (r *Reader) Wait(ctx context.Context, taskID string) (Entry, error) {
	return r.feed.wait(ctx, taskID)
}

// followStep bounds one XREAD BLOCK of Follow: go-redis does not interrupt
// a blocked read when its context is cancelled, so this is how long a
// cancelled Follow (Ctrl-C on `enqueue results --follow`) may take to
// return. An idle follower costs two cheap XREADs a second for it.
const followStep = 500 * time.Millisecond

// Follow calls fn with every result added after from ("$" for only new ones,
// "0" for the whole stream, or an entry id to resume after) until fn
// returns an error or ctx ends, and returns that error or ctx's. It reads
// without a consumer group: nothing is acknowledged, and a restart starts
// again from from (see Consume for the other way).
func (r *Reader) Follow(ctx context.Context, from string, fn func(context.Context, Entry) error) error {
	if from == "$" {
		last, err := r.LastID(ctx)
		if err != nil {
			return err
		}
		from = last
	}
	for {
		block := followStep
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < block {
				block = left
			}
		}
		if block < time.Millisecond {
			// Too little time left to block on Redis: wait the rest out, so
			// the error returned is always ctx's.
			<-ctx.Done()
			return ctx.Err()
		}
		streams, err := r.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream, from}, Count: 500, Block: block}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// Nothing new within block: check ctx and block again.
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read results stream %s: %w", r.stream, err)
		}
		for _, s := range streams {
			for _, msg := range s.Messages {
				from = msg.ID
				if err := fn(ctx, FromValues(msg.ID, msg.Values)); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// LastID is the id of the stream's newest entry, "0-0" when it is empty:
// Follow from it to see every result added after this call.
func (r *Reader) LastID(ctx context.Context) (string, error) {
	msgs, err := r.rdb.XRevRangeN(ctx, r.stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read results stream %s: %w", r.stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}
