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

// Reader reads results: one by task id, waiting for one, or all as they land.
type Reader struct {
	rdb    redis.UniversalClient
	stream string
}

// NewReader returns a Reader of stream.
func NewReader(rdb redis.UniversalClient, stream string) *Reader {
	return &Reader{rdb: rdb, stream: stream}
}

// Lookup returns a task's latest result, or ErrNoResult.
func (r *Reader) Lookup(ctx context.Context, taskID string) (Entry, Map, error) {
	id, err := r.rdb.HGet(ctx, IndexKey(r.stream, taskID), indexEntry).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, nil, ErrNoResult
	}
	if err != nil {
		return Entry{}, nil, fmt.Errorf("look up result of task %s: %w", taskID, err)
	}
	msgs, err := r.rdb.XRange(ctx, r.stream, id, id).Result()
	if err != nil {
		return Entry{}, nil, fmt.Errorf("read result %s of task %s: %w", id, taskID, err)
	}
	if len(msgs) == 0 {
		// The index outlived the entry: the stream was trimmed past it.
		return Entry{}, nil, ErrNoResult
	}
	e, m := FromValues(msgs[0].ID, msgs[0].Values)
	return e, m, nil
}

// blockStep bounds one XREAD BLOCK: go-redis does not interrupt a blocked
// read when its context is cancelled, so this is how long a cancelled Wait
// or Follow (Ctrl-C on `enqueue results --follow`) may take to return. An
// idle follower costs two cheap XREADs a second for it.
const blockStep = 500 * time.Millisecond

// Wait blocks until taskID has a result and returns it. It never misses a
// result that landed before it began: it notes the stream's last id, then
// checks the index (which Publish writes in the same script as the entry),
// then blocks on entries after the noted id. It returns ctx's error when ctx
// ends first.
func (r *Reader) Wait(ctx context.Context, taskID string) (Entry, Map, error) {
	last, err := r.LastID(ctx)
	if err != nil {
		return Entry{}, nil, err
	}
	if e, m, err := r.Lookup(ctx, taskID); !errors.Is(err, ErrNoResult) {
		return e, m, err
	}
	var found *redis.XMessage
	err = r.follow(ctx, last, func(msg redis.XMessage) bool {
		if msg.Values[FieldTaskID] == taskID {
			found = &msg
			return false
		}
		return true
	})
	if found != nil {
		e, m := FromValues(found.ID, found.Values)
		return e, m, nil
	}
	return Entry{}, nil, err
}

// Follow calls fn with every result added after from ("$" for only new ones,
// "0" for the whole stream) until fn returns an error or ctx ends; it
// returns that error or ctx's.
func (r *Reader) Follow(ctx context.Context, from string, fn func(Entry, Map) error) error {
	if from == "$" {
		last, err := r.LastID(ctx)
		if err != nil {
			return err
		}
		from = last
	}
	var fnErr error
	err := r.follow(ctx, from, func(msg redis.XMessage) bool {
		e, m := FromValues(msg.ID, msg.Values)
		fnErr = fn(e, m)
		return fnErr == nil
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}

// follow reads entries after id in order, blocking while there are none,
// until fn returns false or ctx ends.
func (r *Reader) follow(ctx context.Context, id string, fn func(redis.XMessage) bool) error {
	for {
		block := blockStep
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
		streams, err := r.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{r.stream, id}, Count: 500, Block: block}).Result()
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
				id = msg.ID
				if !fn(msg) {
					return nil
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
