package results

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Retention is how much of the stream Trim keeps. A zero field sets no
// bound.
type Retention struct {
	// MaxLen is how many of the newest entries are kept at most.
	MaxLen int64
	// MaxAge is how old an entry may grow before it is deleted.
	MaxAge time.Duration
	// MaxUnackedAge lets Trim delete entries older than it even when a
	// consumer group has not acknowledged them, so that a group nobody
	// reads any more cannot stop trimming forever. Zero never does.
	MaxUnackedAge time.Duration
}

// Trim deletes the results of stream older than keep.MaxAge and/or beyond
// the newest keep.MaxLen, but not one that a consumer group of the stream
// has not yet acknowledged or been delivered, unless it is older than
// keep.MaxUnackedAge: it trims up to the oldest entry any group still
// needs. Ages are measured by Redis's clock (TIME), which stamped the
// entries' ids, not by this process's. It returns how many entries it
// deleted. Run it periodically (every worker does, every minute); it is
// idempotent.
func Trim(ctx context.Context, rdb redis.UniversalClient, stream string, keep Retention) (int64, error) {
	if keep.MaxLen < 0 || keep.MaxAge < 0 || keep.MaxUnackedAge < 0 {
		return 0, fmt.Errorf("trim results: MaxLen %d, MaxAge %s and MaxUnackedAge %s must not be negative", keep.MaxLen, keep.MaxAge, keep.MaxUnackedAge)
	}
	if keep.MaxLen == 0 && keep.MaxAge == 0 {
		return 0, nil
	}
	wrap := func(err error) error { return fmt.Errorf("trim results stream %s: %w", stream, err) }

	now, err := rdb.Time(ctx).Result()
	if err != nil {
		return 0, wrap(err)
	}
	// cut: delete every entry with an id below it.
	var cut streamID
	if keep.MaxAge > 0 {
		cut = streamID{ms: uint64(now.Add(-keep.MaxAge).UnixMilli())}
	}
	if keep.MaxLen > 0 {
		n, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			return 0, wrap(err)
		}
		if n > keep.MaxLen {
			last, err := nthID(ctx, rdb, stream, n-keep.MaxLen)
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
	floor, ok, err := groupsFloor(ctx, rdb, stream)
	if err != nil {
		return 0, wrap(err)
	}
	if ok && floor.less(cut) {
		// A group still needs entries below the cut: keep them, except
		// those past MaxUnackedAge.
		kept := floor
		if keep.MaxUnackedAge > 0 {
			expired := streamID{ms: uint64(now.Add(-keep.MaxUnackedAge).UnixMilli())}
			if expired.less(cut) && kept.less(expired) {
				kept = expired
			} else if !expired.less(cut) {
				kept = cut // all below the cut are past MaxUnackedAge
			}
		}
		cut = kept
	}
	n, err := rdb.XTrimMinID(ctx, stream, cut.String()).Result()
	if err != nil {
		return 0, wrap(err)
	}
	return n, nil
}

// nthID is the id of the stream's nth entry (1-based), read in pages so a
// large first trim does not hold a huge reply.
func nthID(ctx context.Context, rdb redis.UniversalClient, stream string, n int64) (streamID, error) {
	const page = 1000
	start := "-"
	var last streamID
	for n > 0 {
		msgs, err := rdb.XRangeN(ctx, stream, start, "+", min(n, page)).Result()
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
func groupsFloor(ctx context.Context, rdb redis.UniversalClient, stream string) (floor streamID, ok bool, err error) {
	// A missing stream has no groups; asking EXISTS alongside spares
	// matching XINFO's error text for it.
	var exists *redis.IntCmd
	var info *redis.XInfoGroupsCmd
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, stream)
		info = p.XInfoGroups(ctx, stream)
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
			p, err := rdb.XPending(ctx, stream, g.Name).Result()
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
