package results

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// StreamStats is how full the stream is and how far behind each consumer
// group reads it.
type StreamStats struct {
	// Entries is the stream's length (XLEN): 0 when it does not exist yet.
	Entries int64
	// Groups are the stream's consumer groups, none before one is made.
	Groups []GroupStats
}

// GroupStats is one consumer group's position.
type GroupStats struct {
	Name string
	// Lag is how many entries the group has not been delivered yet.
	Lag int64
	// Pending is how many it was delivered and has not acknowledged.
	Pending int64
}

// Stats reads stream's length and its consumer groups in one round trip,
// for gauges and dashboards.
func Stats(ctx context.Context, rdb redis.UniversalClient, stream string) (StreamStats, error) {
	pipe := rdb.Pipeline()
	n := pipe.XLen(ctx, stream)
	groups := pipe.XInfoGroups(ctx, stream)
	_, _ = pipe.Exec(ctx) // each command's error is read below
	if err := n.Err(); err != nil {
		return StreamStats{}, fmt.Errorf("read the length of results stream %s: %w", stream, err)
	}
	// A stream not made yet has no groups; XINFO says so with this error
	// (Redis 7 and miniredis: "ERR no such key"). Any other, such as an
	// ACL that denies XINFO, is not an empty answer.
	if err := groups.Err(); err != nil && !redis.HasErrorPrefix(err, "no such key") {
		return StreamStats{}, fmt.Errorf("read the consumer groups of results stream %s: %w", stream, err)
	}
	st := StreamStats{Entries: n.Val()}
	for _, g := range groups.Val() {
		st.Groups = append(st.Groups, GroupStats{Name: g.Name, Lag: g.Lag, Pending: g.Pending})
	}
	return st, nil
}
