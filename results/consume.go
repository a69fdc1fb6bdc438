package results

import (
	"context"
	"errors"
	"fmt"
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
	if err := r.createGroup(ctx, group, from); err != nil {
		return err
	}
	c := &consumption{r: r, group: group, consumer: consumer, fn: fn, opts: opts}
	if c.opts.Count <= 0 {
		c.opts.Count = 100
	}
	if err := c.replayPending(ctx); err != nil {
		return c.wrap(ctx, err)
	}
	return c.wrap(ctx, c.loop(ctx))
}

// createGroup creates group on the stream (and the stream) starting at
// from; a group that exists already is kept as it is.
func (r *Reader) createGroup(ctx context.Context, group, from string) error {
	err := r.rdb.XGroupCreateMkStream(ctx, r.stream, group, from).Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, r.stream, err)
	}
	return nil
}

// consumption is one Consume's state.
type consumption struct {
	r               *Reader
	group, consumer string
	fn              func(context.Context, Entry) error
	opts            ConsumeOptions // Count set
}

// wrap names the consumer in err; once ctx has ended, it is ctx's error.
func (c *consumption) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("consume results from %s as %s/%s: %w", c.r.stream, c.group, c.consumer, err)
}

// replayPending hands fn, once, the entries this consumer took before a
// restart and did not acknowledge.
func (c *consumption) replayPending(ctx context.Context) error {
	for cursor := "0"; ; {
		msgs, err := c.r.readGroup(ctx, c.group, c.consumer, cursor, c.opts.Count, -1)
		if err != nil || len(msgs) == 0 {
			return err
		}
		if err := c.handle(ctx, msgs); err != nil {
			return err
		}
		cursor = msgs[len(msgs)-1].ID
	}
}

// loop reads new entries, and with ClaimIdle claims stale ones, until ctx
// ends or Redis fails.
func (c *consumption) loop(ctx context.Context) error {
	var nextClaim time.Time
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		block := consumeBlock
		if c.opts.ClaimIdle > 0 {
			if now := time.Now(); !now.Before(nextClaim) {
				if err := c.claim(ctx); err != nil {
					return err
				}
				nextClaim = now.Add(c.opts.ClaimIdle / 2)
			}
			block = min(block, max(time.Until(nextClaim), time.Millisecond))
		}
		msgs, err := c.r.readGroup(ctx, c.group, c.consumer, ">", c.opts.Count, block)
		if err != nil {
			return err
		}
		if err := c.handle(ctx, msgs); err != nil {
			return err
		}
	}
}

// handle calls fn with each of msgs and acknowledges those it returned nil
// for. An entry fn has handled is acknowledged even if ctx ends meanwhile,
// so a shutdown does not hand it out again.
func (c *consumption) handle(ctx context.Context, msgs []redis.XMessage) error {
	ackCtx := context.WithoutCancel(ctx)
	for _, msg := range msgs {
		if msg.Values == nil {
			// Deleted from the stream while pending: nothing to hand fn.
			if err := c.r.rdb.XAck(ackCtx, c.r.stream, c.group, msg.ID).Err(); err != nil {
				return err
			}
			continue
		}
		if err := c.fn(ctx, FromValues(msg.ID, msg.Values)); err != nil {
			continue // pending: delivered again later
		}
		if err := c.r.rdb.XAck(ackCtx, c.r.stream, c.group, msg.ID).Err(); err != nil {
			return err
		}
	}
	return nil
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

// claim takes over every entry pending longer than ClaimIdle and handles
// it.
func (c *consumption) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := c.r.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: c.r.stream, Group: c.group, Consumer: c.consumer, MinIdle: c.opts.ClaimIdle, Start: start, Count: c.opts.Count,
		}).Result()
		if err != nil {
			return err
		}
		if err := c.handle(ctx, msgs); err != nil {
			return err
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
}
