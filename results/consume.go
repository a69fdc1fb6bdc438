package results

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ConsumeOptions tune Consume.
type ConsumeOptions struct {
	// From is where a group that does not exist yet starts: "$" (the
	// default) for results added from now on, "0" for the whole stream.
	From string
	// ClaimIdle, when > 0, makes Consume take over entries that have been
	// pending (delivered, not acknowledged) longer than this, checking every
	// ClaimIdle/2: another consumer of the group died holding them, or fn
	// failed on them here. Choose it well above fn's longest run.
	ClaimIdle time.Duration
	// Count is how many entries to read at a time; default 100.
	Count int64
}

// consumeBlock bounds one XREADGROUP BLOCK so ctx and claims are noticed.
const consumeBlock = 2 * time.Second

// Consume reads results as consumer consumer of group group (creating the
// group, and the stream, if needed) and calls fn with each. An entry is
// acknowledged only when fn returns nil, so each result is handled at least
// once: one fn failed on (fn logs its own error if it wants it seen) or
// that was interrupted stays pending, and is delivered again when this
// consumer restarts under the same name or, with ClaimIdle, when any
// consumer of the group claims it. Several processes may consume as one
// group under different consumer names to share the load.
//
// Consume runs until ctx ends (returning ctx's error) or Redis fails.
func (r *Reader) Consume(ctx context.Context, group, consumer string, fn func(context.Context, Entry) error, opts ConsumeOptions) error {
	if group == "" || consumer == "" {
		return errors.New("consume results: group and consumer names are required")
	}
	from := opts.From
	if from == "" {
		from = "$"
	}
	if from != "$" && from != "0" {
		return fmt.Errorf("consume results: From is %q; use \"$\" (new results) or \"0\" (the whole stream)", from)
	}
	count := opts.Count
	if count <= 0 {
		count = 100
	}
	err := r.rdb.XGroupCreateMkStream(ctx, r.stream, group, from).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, r.stream, err)
	}
	// An entry fn has handled is acknowledged even if ctx ends meanwhile,
	// so a shutdown does not hand it out again.
	ackCtx := context.WithoutCancel(ctx)
	handle := func(msgs []redis.XMessage) error {
		for _, msg := range msgs {
			if msg.Values == nil {
				// Deleted from the stream while pending: nothing to hand fn.
				if err := r.rdb.XAck(ackCtx, r.stream, group, msg.ID).Err(); err != nil {
					return err
				}
				continue
			}
			if err := fn(ctx, FromValues(msg.ID, msg.Values)); err != nil {
				continue // pending: delivered again later
			}
			if err := r.rdb.XAck(ackCtx, r.stream, group, msg.ID).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("consume results from %s as %s/%s: %w", r.stream, group, consumer, err)
	}

	// Entries this consumer took before a restart come first, once.
	for cursor := "0"; ; {
		msgs, err := r.readGroup(ctx, group, consumer, cursor, count, -1)
		if err != nil {
			return wrap(err)
		}
		if len(msgs) == 0 {
			break
		}
		if err := handle(msgs); err != nil {
			return wrap(err)
		}
		cursor = msgs[len(msgs)-1].ID
	}

	var nextClaim time.Time
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		block := consumeBlock
		if opts.ClaimIdle > 0 {
			if now := time.Now(); !now.Before(nextClaim) {
				if err := r.claim(ctx, group, consumer, opts.ClaimIdle, count, handle); err != nil {
					return wrap(err)
				}
				nextClaim = now.Add(opts.ClaimIdle / 2)
			}
			block = min(block, max(time.Until(nextClaim), time.Millisecond))
		}
		msgs, err := r.readGroup(ctx, group, consumer, ">", count, block)
		if err != nil {
			return wrap(err)
		}
		if err := handle(msgs); err != nil {
			return wrap(err)
		}
	}
}

// readGroup is XREADGROUP; block < 0 does not block (for pending entries).
func (r *Reader) readGroup(ctx context.Context, group, consumer, id string, count int64, block time.Duration) ([]redis.XMessage, error) {
	streams, err := r.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{r.stream, id}, Count: count, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var msgs []redis.XMessage
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	return msgs, nil
}

// claim takes over every entry pending longer than idle and handles it.
func (r *Reader) claim(ctx context.Context, group, consumer string, idle time.Duration, count int64, handle func([]redis.XMessage) error) error {
	start := "0-0"
	for {
		msgs, next, err := r.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: r.stream, Group: group, Consumer: consumer, MinIdle: idle, Start: start, Count: count,
		}).Result()
		if err != nil {
			return err
		}
		if err := handle(msgs); err != nil {
			return err
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
}
