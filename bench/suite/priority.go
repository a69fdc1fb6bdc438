package suite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/refreshq/refreshq/results"
)

// priority puts Backlog tasks in low, starts the full worker, and while it
// works through them enqueues Critical tasks in critical, one every 100 ms,
// and measures each one's enqueue-to-result time.
func (s *suite) priority(ctx context.Context) string {
	out, err := s.priorityRun(ctx)
	if err != nil {
		return fmt.Sprintf("Priority check failed to run: %v\n", err)
	}
	return out
}

func (s *suite) priorityRun(ctx context.Context) (string, error) {
	n := s.names("prio")
	defer s.cleanup(n)
	enq := &enqueuer{client: s.client, prefix: n.idPrefix}
	start := time.Now()
	if err := enq.batch(ctx, n.low, s.cfg.Backlog); err != nil {
		return "", err
	}
	fmt.Fprintf(s.log, "   %d tasks in low in %s\n", s.cfg.Backlog, time.Since(start).Round(time.Millisecond))
	c, err := s.startChild(kindFull, n, s.cfg.Latency)
	if err != nil {
		return "", err
	}
	defer c.stop(ctx)
	count := func(ctx context.Context) (int64, error) { return s.rdb.XLen(ctx, n.stream).Result() }
	// Every worker slot is busy with low tasks before the first critical
	// one arrives.
	if _, err := waitFor(ctx, count, int64(4*s.cfg.Concurrency), time.Minute); err != nil {
		return "", err
	}
	lowBefore, err := s.insp.GetQueueInfo(n.low)
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, s.cfg.Critical)
	for range s.cfg.Critical {
		id, err := enq.one(ctx, n.critical)
		if err != nil {
			return "", err
		}
		ids = append(ids, id)
		time.Sleep(100 * time.Millisecond)
	}
	reader := results.NewReader(s.rdb, n.stream)
	lat := make([]int64, 0, len(ids))
	pending := ids
	deadline := time.Now().Add(2 * time.Minute)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range pending {
			e, _, err := reader.Lookup(ctx, id)
			switch {
			case errors.Is(err, results.ErrNoResult):
				still = append(still, id)
			case err != nil:
				return "", err
			default:
				at, _ := enqueuedAt(id)
				lat = append(lat, e.FinishedAt.UnixNano()-at)
			}
		}
		pending = still
		time.Sleep(20 * time.Millisecond)
	}
	lowAfter, err := s.insp.GetQueueInfo(n.low)
	if err != nil {
		return "", err
	}
	p99 := percentile(lat, 99)
	var b strings.Builder
	fmt.Fprintf(&b, "Priority: %d tasks in critical, one every 100 ms, while low held %d → %d pending tasks (full worker, %s upstream, concurrency %d):\n",
		len(ids), lowBefore.Pending, lowAfter.Pending, s.cfg.Latency, s.cfg.Concurrency)
	fmt.Fprintf(&b, "- enqueue-to-result p50 %s, p99 %s, max %s; %d never finished within 2 min\n",
		ms(percentile(lat, 50)), ms(p99), ms(percentile(lat, 100)), len(pending))
	fmt.Fprintf(&b, "- target p99 ≤ 1 s: %s\n", verdict(len(pending) == 0 && p99 <= time.Second))
	return b.String(), nil
}
