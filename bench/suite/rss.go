package suite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// rssGrowth runs the budgeted worker binary (0 ms upstream) through RSSLarge tasks,
// keeping a backlog of 10,000–20,000 tasks so Redis does not have to hold
// all of them, and samples the worker's RSS at RSSSmall and at every tenth
// of RSSLarge.
func (s *suite) rssGrowth(ctx context.Context) string {
	out, err := s.rssRun(ctx)
	if err != nil {
		return fmt.Sprintf("RSS check failed to run: %v\n%s", err, out)
	}
	return out
}

func (s *suite) rssRun(ctx context.Context) (string, error) {
	n := s.names("rss")
	defer s.cleanup(n)
	enq := &enqueuer{client: s.client, prefix: n.idPrefix}
	const chunk = 10_000
	total := s.cfg.RSSLarge
	first := min(2*chunk, total)
	if err := enq.batch(ctx, n.def, first); err != nil {
		return "", err
	}
	enqueued := first
	u, err := s.upstream(upstreamOptions{})
	if err != nil {
		return "", err
	}
	c, err := s.startWorker(n, u, s.cfg.Budget)
	if err != nil {
		return "", err
	}
	defer c.stop(ctx)

	// The stream is trimmed as it goes: its size is Redis's memory, not
	// the worker's, and would otherwise grow by a few GB.
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for fctx.Err() == nil {
			s.rdb.XTrimMaxLenApprox(fctx, n.stream, 10_000, 0)
			time.Sleep(time.Second)
		}
	}()
	defer func() { stopFeed(); wg.Wait() }()

	var b strings.Builder
	fmt.Fprintf(&b, "Worker RSS over %d tasks (budgeted worker, 0 ms upstream, concurrency %d):\n\n| tasks done | RSS | heap in use | elapsed |\n|---:|---:|---:|---:|\n", total, s.cfg.Concurrency)
	marks := []int{s.cfg.RSSSmall}
	for i := 1; i <= 10; i++ {
		if m := total * i / 10; m != s.cfg.RSSSmall {
			marks = append(marks, m)
		}
	}
	start := time.Now()
	rss := map[int]int64{}
	next := 0
	for next < len(marks) {
		info, err := s.insp.GetQueueInfo(n.def)
		if err != nil {
			return b.String(), err
		}
		done := enqueued - info.Size
		for next < len(marks) && done >= marks[next] {
			st, err := c.stats()
			if err != nil {
				return b.String(), err
			}
			rss[marks[next]] = st.RSSKB
			fmt.Fprintf(&b, "| %d | %.1f MB | %.1f MB | %s |\n", done, float64(st.RSSKB)/1024, float64(st.HeapKB)/1024, time.Since(start).Round(time.Second))
			fmt.Fprintf(s.log, "   %d done, RSS %.1f MB, %s\n", done, float64(st.RSSKB)/1024, time.Since(start).Round(time.Second))
			next++
		}
		if info.Size < chunk && enqueued < total {
			k := min(chunk, total-enqueued)
			if err := enq.batch(ctx, n.def, k); err != nil {
				return b.String(), err
			}
			enqueued += k
			continue
		}
		select {
		case <-ctx.Done():
			return b.String(), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	small, large := rss[s.cfg.RSSSmall], rss[total]
	growth := float64(large)/float64(small) - 1
	fmt.Fprintf(&b, "\n- RSS after %d tasks is %+.0f%% of RSS after %d (target within 20%%): %s\n", total, 100*growth, s.cfg.RSSSmall, verdict(growth <= 0.2 && growth >= -0.2))
	return b.String(), nil
}
