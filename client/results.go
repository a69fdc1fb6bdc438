package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
)

// Result returns a task's latest result, or results.ErrNoResult while it
// has none (queued, running, retrying, or its index record expired).
func (c *Client) Result(ctx context.Context, taskID string) (results.Entry, results.Map, error) {
	return c.reader.Lookup(ctx, taskID)
}

// Wait blocks until taskID has a result and returns it, however early the
// result landed. It returns ctx's error when ctx ends first: give ctx a
// timeout. Concurrent Waits on one Client share a single blocking read of
// the stream, so thousands of waiters cost Redis about what one does.
func (c *Client) Wait(ctx context.Context, taskID string) (results.Entry, results.Map, error) {
	return c.feed.Wait(ctx, taskID)
}

// Follow calls fn with each result added after from ("$": only new ones;
// "0": the whole stream; or an entry id) until fn returns an error or ctx
// ends, and returns that error or ctx's. It reads without a consumer group:
// nothing is acknowledged and a restart starts again from from.
func (c *Client) Follow(ctx context.Context, from string, fn func(results.Entry, results.Map) error) error {
	return c.reader.Follow(ctx, from, fn)
}

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
	// OnError, if set, is called when fn returns an error; the entry stays
	// pending.
	OnError func(results.Entry, error)
}

// consumeBlock bounds one XREADGROUP BLOCK so ctx and claims are noticed.
const consumeBlock = 2 * time.Second

// Consume reads results as consumer consumer of group group (creating the
// group, and the stream, if needed) and calls fn with each. An entry is
// acknowledged only when fn returns nil, so each result is handled at least
// once: a failed or interrupted one stays pending, and is delivered again
// when this consumer restarts under the same name or, with ClaimIdle, when
// any consumer of the group claims it. Several processes may consume as one
// group under different consumer names to share the load.
//
// Consume runs until ctx ends (returning ctx's error) or Redis fails.
func (c *Client) Consume(ctx context.Context, group, consumer string, fn func(context.Context, results.Entry) error, opts ConsumeOptions) error {
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
	err := c.rdb.XGroupCreateMkStream(ctx, c.stream, group, from).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s on %s: %w", group, c.stream, err)
	}
	// An entry fn has handled is acknowledged even if ctx ends meanwhile,
	// so a shutdown does not hand it out again.
	ackCtx := context.WithoutCancel(ctx)
	handle := func(msgs []redis.XMessage) error {
		for _, msg := range msgs {
			if msg.Values == nil {
				// Deleted from the stream while pending: nothing to hand fn.
				if err := c.rdb.XAck(ackCtx, c.stream, group, msg.ID).Err(); err != nil {
					return err
				}
				continue
			}
			e, _ := results.FromValues(msg.ID, msg.Values)
			if err := fn(ctx, e); err != nil {
				if opts.OnError != nil {
					opts.OnError(e, err)
				}
				continue
			}
			if err := c.rdb.XAck(ackCtx, c.stream, group, msg.ID).Err(); err != nil {
				return err
			}
		}
		return nil
	}
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("consume results from %s as %s/%s: %w", c.stream, group, consumer, err)
	}

	// Entries this consumer took before a restart come first, once.
	for cursor := "0"; ; {
		msgs, err := c.readGroup(ctx, group, consumer, cursor, count, -1)
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
				if err := c.claim(ctx, group, consumer, opts.ClaimIdle, count, handle); err != nil {
					return wrap(err)
				}
				nextClaim = now.Add(opts.ClaimIdle / 2)
			}
			block = min(block, max(time.Until(nextClaim), time.Millisecond))
		}
		msgs, err := c.readGroup(ctx, group, consumer, ">", count, block)
		if err != nil {
			return wrap(err)
		}
		if err := handle(msgs); err != nil {
			return wrap(err)
		}
	}
}

// readGroup is XREADGROUP; block < 0 does not block (for pending entries).
func (c *Client) readGroup(ctx context.Context, group, consumer, id string, count int64, block time.Duration) ([]redis.XMessage, error) {
	streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{c.stream, id}, Count: count, Block: block,
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
func (c *Client) claim(ctx context.Context, group, consumer string, idle time.Duration, count int64, handle func([]redis.XMessage) error) error {
	start := "0-0"
	for {
		msgs, next, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: c.stream, Group: group, Consumer: consumer, MinIdle: idle, Start: start, Count: count,
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

// TrimOption changes how TrimResults trims.
type TrimOption func(*trimSettings)

type trimSettings struct{ maxUnackedAge time.Duration }

// MaxUnackedAge lets TrimResults delete entries older than d even when a
// consumer group has not acknowledged them, so that a group nobody reads
// any more cannot stop trimming forever. Zero (the default) never does.
func MaxUnackedAge(d time.Duration) TrimOption {
	return func(s *trimSettings) { s.maxUnackedAge = d }
}

// TrimResults deletes results older than maxAge and/or beyond the newest
// maxLen (zero turns either off), but not one that a consumer group of the
// stream has not yet acknowledged or been delivered, unless it is older
// than MaxUnackedAge: it trims up to the oldest entry any group still
// needs. Ages are measured by Redis's clock (TIME), which stamped the
// entries' ids, not by this process's. It returns how many entries it
// deleted. Run it periodically (e.g. every few minutes).
func (c *Client) TrimResults(ctx context.Context, maxLen int64, maxAge time.Duration, opts ...TrimOption) (int64, error) {
	var s trimSettings
	for _, o := range opts {
		o(&s)
	}
	if maxLen < 0 || maxAge < 0 || s.maxUnackedAge < 0 {
		return 0, fmt.Errorf("trim results: maxLen %d, maxAge %s and MaxUnackedAge %s must not be negative", maxLen, maxAge, s.maxUnackedAge)
	}
	if maxLen == 0 && maxAge == 0 {
		return 0, nil
	}
	wrap := func(err error) error { return fmt.Errorf("trim results stream %s: %w", c.stream, err) }

	now, err := c.rdb.Time(ctx).Result()
	if err != nil {
		return 0, wrap(err)
	}
	// cut: delete every entry with an id below it.
	var cut streamID
	if maxAge > 0 {
		cut = streamID{ms: uint64(now.Add(-maxAge).UnixMilli())}
	}
	if maxLen > 0 {
		n, err := c.rdb.XLen(ctx, c.stream).Result()
		if err != nil {
			return 0, wrap(err)
		}
		if n > maxLen {
			last, err := c.nthID(ctx, n-maxLen)
			if err != nil {
				return 0, wrap(err)
			}
			if id := last.next(); cut.less(id) {
				cut = id
			}
		}
	}
	if cut.isZero() {
		return 0, nil
	}
	floor, ok, err := c.groupsFloor(ctx)
	if err != nil {
		return 0, wrap(err)
	}
	if ok && floor.less(cut) {
		// A group still needs entries below the cut: keep them, except
		// those past MaxUnackedAge.
		keep := floor
		if s.maxUnackedAge > 0 {
			expired := streamID{ms: uint64(now.Add(-s.maxUnackedAge).UnixMilli())}
			if expired.less(cut) && keep.less(expired) {
				keep = expired
			} else if !expired.less(cut) {
				keep = cut // all below the cut are past MaxUnackedAge
			}
		}
		cut = keep
	}
	n, err := c.rdb.XTrimMinID(ctx, c.stream, cut.String()).Result()
	if err != nil {
		return 0, wrap(err)
	}
	return n, nil
}

// nthID is the id of the stream's nth entry (1-based), read in pages so a
// large first trim does not hold a huge reply.
func (c *Client) nthID(ctx context.Context, n int64) (streamID, error) {
	const page = 1000
	start := "-"
	var last streamID
	for n > 0 {
		msgs, err := c.rdb.XRangeN(ctx, c.stream, start, "+", min(n, page)).Result()
		if err != nil {
			return streamID{}, err
		}
		if len(msgs) == 0 {
			break
		}
		last, err = parseStreamID(msgs[len(msgs)-1].ID)
		if err != nil {
			return streamID{}, err
		}
		n -= int64(len(msgs))
		start = "(" + msgs[len(msgs)-1].ID
	}
	return last, nil
}

// groupsFloor is the oldest entry any consumer group still needs: its
// oldest pending entry, else the one after the last delivered. ok is false
// when the stream has no groups.
func (c *Client) groupsFloor(ctx context.Context) (floor streamID, ok bool, err error) {
	// A missing stream has no groups; asking EXISTS alongside spares
	// matching XINFO's error text for it.
	var exists *redis.IntCmd
	var info *redis.XInfoGroupsCmd
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, c.stream)
		info = p.XInfoGroups(ctx, c.stream)
		return nil
	})
	if n, err := exists.Result(); err != nil || n == 0 {
		return streamID{}, false, err
	}
	groups, err := info.Result()
	if err != nil {
		return streamID{}, false, err
	}
	for _, g := range groups {
		var need streamID
		if g.Pending > 0 {
			p, err := c.rdb.XPending(ctx, c.stream, g.Name).Result()
			if err != nil {
				return streamID{}, false, err
			}
			if need, err = parseStreamID(p.Lower); err != nil {
				return streamID{}, false, err
			}
		} else {
			last, err := parseStreamID(g.LastDeliveredID)
			if err != nil {
				return streamID{}, false, err
			}
			need = last.next()
		}
		if !ok || need.less(floor) {
			floor, ok = need, true
		}
	}
	return floor, ok, nil
}

// streamID is a Redis stream entry id, ms-seq.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	ms, seq, _ := strings.Cut(s, "-")
	a, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
	}
	var b uint64
	if seq != "" {
		if b, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return streamID{}, fmt.Errorf("stream id %q: %w", s, err)
		}
	}
	return streamID{a, b}, nil
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || id.ms == o.ms && id.seq < o.seq
}

func (id streamID) isZero() bool { return id == streamID{} }

func (id streamID) next() streamID {
	if id.seq == ^uint64(0) {
		return streamID{id.ms + 1, 0}
	}
	return streamID{id.ms, id.seq + 1}
}

func (id streamID) String() string { return fmt.Sprintf("%d-%d", id.ms, id.seq) }
