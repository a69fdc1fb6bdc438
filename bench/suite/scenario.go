package suite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/results"
)

// The two scenarios run the worker binary under a budget its backlog keeps
// fully busy, against an upstream that enforces the same limit itself (a
// request over it gets a 429), with the -latency upstream. They measure
// what a user waits for a task that arrives behind the backlog.

// scenario is one scenario's worker, upstream and names.
type scenario struct {
	s     *suite
	n     names
	u     *upstream
	w     *workerProc
	start time.Time // when the measured tasks began to be enqueued
	base  int64     // the upstream's 429s before the scenario
}

// startScenario enqueues backlog tasks with enq on queue, starts the
// worker with a ScenarioRate/1s budget and waits until the budget is
// saturated.
func (s *suite) startScenario(ctx context.Context, what string, queue func(names) string, backlog int, tenant string) (*scenario, error) {
	sc := &scenario{s: s, n: s.names(what)}
	enq := &enqueuer{client: s.client, prefix: sc.n.idPrefix + "-backlog", tenant: tenant}
	if err := enq.batch(ctx, queue(sc.n), backlog); err != nil {
		return nil, err
	}
	u, err := s.upstream(upstreamOptions{latency: s.cfg.Latency, limit: s.cfg.ScenarioRate, window: time.Second})
	if err != nil {
		return nil, err
	}
	sc.u = u
	sc.base = u.tooMany.Load()
	if sc.w, err = s.startWorker(sc.n, u, fmt.Sprintf("%d/1s", s.cfg.ScenarioRate)); err != nil {
		return nil, err
	}
	// Two windows' worth of results: the budget is in steady use.
	count := func(ctx context.Context) (int64, error) { return s.rdb.XLen(ctx, sc.n.stream).Result() }
	if _, err := waitFor(ctx, count, int64(2*s.cfg.ScenarioRate), time.Minute); err != nil {
		sc.stop(ctx)
		return nil, err
	}
	u.startRecording()
	sc.start = time.Now()
	return sc, nil
}

func (sc *scenario) stop(ctx context.Context) {
	if err := sc.w.stop(ctx); err != nil {
		fmt.Fprintf(sc.s.log, "   worker: %v\n", err)
	}
	sc.s.cleanup(sc.n)
}

// waitResults waits up to timeout for each id's result entry and returns
// each one's enqueue-to-result time (-1: none within the timeout) and
// the time the last one came.
func (sc *scenario) waitResults(ctx context.Context, ids []string, timeout time.Duration) ([]time.Duration, time.Time, error) {
	reader := results.NewReader(sc.s.rdb, sc.n.stream)
	lat := make([]time.Duration, len(ids))
	for i := range lat {
		lat[i] = -1
	}
	var last time.Time
	deadline := time.Now().Add(timeout)
	for {
		pending := 0
		for i, id := range ids {
			if lat[i] >= 0 {
				continue
			}
			e, err := reader.Lookup(ctx, id)
			switch {
			case errors.Is(err, results.ErrNoResult):
				pending++
			case err != nil:
				return lat, last, err
			default:
				at, _ := enqueuedAt(id)
				lat[i] = time.Duration(e.FinishedAt.UnixNano() - at)
				if e.FinishedAt.After(last) {
					last = e.FinishedAt
				}
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			return lat, last, nil
		}
		select {
		case <-ctx.Done():
			return lat, last, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// report is the lines both scenarios end with: each measured task's
// wait, its p50 and max, the budget's use while they were waited for,
// and the 429s the upstream sent.
func (sc *scenario) report(b *strings.Builder, who string, lat []time.Duration, end time.Time, goal time.Duration) {
	var done []int64
	cells := make([]string, len(lat))
	for i, d := range lat {
		if d < 0 {
			cells[i] = "none"
			continue
		}
		done = append(done, int64(d))
		cells[i] = fmt.Sprintf("%.2f s", d.Seconds())
	}
	missing := len(lat) - len(done)
	maxD := time.Duration(0)
	if len(done) > 0 {
		maxD = time.Duration(slices.Max(done))
	}
	if end.IsZero() || missing > 0 {
		end = time.Now()
	}
	rate := float64(sc.s.cfg.ScenarioRate)
	answered := 0
	for _, t := range sc.u.answered() {
		if !t.Before(sc.start) && !t.After(end) {
			answered++
		}
	}
	use := float64(answered) / (rate * end.Sub(sc.start).Seconds())
	fmt.Fprintf(b, "- %s, enqueue to result, in order: %s\n", who, strings.Join(cells, ", "))
	fmt.Fprintf(b, "- p50 %.2f s, max %.2f s; %d without a result (target: every one within %s: %s)\n",
		percentile(done, 50).Seconds(), maxD.Seconds(), missing, goal, verdict(missing == 0 && maxD <= goal))
	fmt.Fprintf(b, "- budget use from the first of them enqueued to the last result: %.0f%% (%d requests answered 200 in %.1f s at %d/1s; target ≥ 90%%: %s)\n",
		100*use, answered, end.Sub(sc.start).Seconds(), sc.s.cfg.ScenarioRate, verdict(use >= 0.9))
	tooMany := sc.u.tooMany.Load() - sc.base
	fmt.Fprintf(b, "- 429s at the upstream during the scenario: %d (target 0: %s)\n", tooMany, verdict(tooMany == 0))
}

// priority: a backlog in low keeps the budget busy; critical refreshes
// arrive one a second, the way a user clicks "refresh now".
func (s *suite) priority(ctx context.Context) string {
	out, err := s.priorityRun(ctx)
	if err != nil {
		return fmt.Sprintf("Priority scenario failed to run: %v\n", err)
	}
	return out
}

func (s *suite) priorityRun(ctx context.Context) (string, error) {
	sc, err := s.startScenario(ctx, "prio", func(n names) string { return n.low }, s.cfg.Backlog, "")
	if err != nil {
		return "", err
	}
	defer sc.stop(ctx)
	enq := &enqueuer{client: s.client, prefix: sc.n.idPrefix}
	ids := make([]string, 0, s.cfg.Critical)
	for i := range s.cfg.Critical {
		if i > 0 {
			time.Sleep(time.Second)
		}
		id, err := enq.one(ctx, sc.n.critical)
		if err != nil {
			return "", err
		}
		ids = append(ids, id)
	}
	lat, end, err := sc.waitResults(ctx, ids, time.Minute)
	if err != nil {
		return "", err
	}
	low, _ := s.insp.GetQueueInfo(sc.n.low)
	var b strings.Builder
	fmt.Fprintf(&b, "Priority: %d tasks in low, budget BUNDLE_SOCIAL_RATE=%d/1s, upstream %s with its own %d/1s limit, concurrency %d; then %d tasks in critical, one a second (%d tasks of low still waiting after the last critical one's result):\n\n",
		s.cfg.Backlog, s.cfg.ScenarioRate, s.cfg.Latency, s.cfg.ScenarioRate, s.cfg.Concurrency, len(ids), waiting(low))
	sc.report(&b, "critical tasks", lat, end, 2*time.Second)
	return b.String(), nil
}

// tenants: one tenant's backlog keeps the budget busy in one queue; a
// second tenant's tasks arrive together.
func (s *suite) tenants(ctx context.Context) string {
	out, err := s.tenantRun(ctx)
	if err != nil {
		return fmt.Sprintf("Tenant scenario failed to run: %v\n", err)
	}
	return out
}

func (s *suite) tenantRun(ctx context.Context) (string, error) {
	sc, err := s.startScenario(ctx, "tenant", func(n names) string { return n.def }, s.cfg.TenantA, "tenant-a")
	if err != nil {
		return "", err
	}
	defer sc.stop(ctx)
	enq := &enqueuer{client: s.client, prefix: sc.n.idPrefix, tenant: "tenant-b"}
	ids := make([]string, 0, s.cfg.TenantB)
	for range s.cfg.TenantB {
		id, err := enq.one(ctx, sc.n.def)
		if err != nil {
			return "", err
		}
		ids = append(ids, id)
	}
	timeout := time.Duration(s.cfg.TenantA/s.cfg.ScenarioRate)*time.Second + time.Minute
	lat, end, err := sc.waitResults(ctx, ids, timeout)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Tenants: %d tasks of tenant-a in default, budget BUNDLE_SOCIAL_RATE=%d/1s, upstream %s with its own %d/1s limit, concurrency %d; then %d tasks of tenant-b in default, at once:\n\n",
		s.cfg.TenantA, s.cfg.ScenarioRate, s.cfg.Latency, s.cfg.ScenarioRate, s.cfg.Concurrency, len(ids))
	sc.report(&b, "tenant-b's tasks", lat, end, 4*time.Second)
	return b.String(), nil
}

// waiting is how many of a queue's tasks are not done: pending, running,
// or handed back to wait (scheduled or retry).
func waiting(q *asynq.QueueInfo) int {
	if q == nil {
		return 0
	}
	return q.Pending + q.Active + q.Scheduled + q.Retry
}
