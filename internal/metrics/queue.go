package metrics

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueStates are the task states reported in refreshq_queue_tasks, in the
// order docs/reference.md lists them.
var QueueStates = []string{"pending", "active", "scheduled", "retry", "archived"}

const (
	// queueCacheTTL lets several Prometheus servers (or a dashboard and a
	// Prometheus) scrape every worker replica without each scrape costing
	// two Lua scripts per queue.
	queueCacheTTL = 1500 * time.Millisecond
	// queueReadTimeout keeps a slow Redis from stalling the whole scrape;
	// Inspector takes no context, so the read goes on in the background and
	// its answer serves the next scrape.
	queueReadTimeout = 2 * time.Second
)

var (
	queueTasksDesc = prometheus.NewDesc("refreshq_queue_tasks",
		"Tasks in an asynq queue, by state (pending, active, scheduled, retry, archived).",
		[]string{"queue", "state"}, nil)
	queueLatencyDesc = prometheus.NewDesc("refreshq_queue_latency_seconds",
		"Age of the oldest pending task in the queue (0 when none is pending).",
		[]string{"queue"}, nil)
	queuePausedDesc = prometheus.NewDesc("refreshq_queue_paused",
		"1 when the queue is paused (e.g. from the web UI) and its tasks are not being processed.",
		[]string{"queue"}, nil)
	queueUpDesc = prometheus.NewDesc("refreshq_queue_stats_up",
		"1 when the queue gauges could be read from Redis at this scrape; 0 when they are missing because the read failed or timed out.",
		nil, nil)
)

// queueSnapshot is one read of every queue; infos has an entry per queue
// reported, zero-valued for queues Redis does not know yet.
type queueSnapshot struct {
	infos map[string]asynq.QueueInfo
	err   error
}

type queueCollector struct {
	insp    *asynq.Inspector
	queues  []string
	ttl     time.Duration
	timeout time.Duration

	mu       sync.Mutex
	last     queueSnapshot
	lastAt   time.Time
	inflight chan struct{} // closed when the running read has stored its snapshot
}

// NewQueueCollector returns a collector that reports, for each of queues
// (every queue asynq knows when queues is empty), its task counts by state,
// its latency and whether it is paused. It reads Redis through insp at
// scrape time, at most about once per 1.5 s, and gives up on a read after
// 2 s, reporting refreshq_queue_stats_up 0 instead of the gauges. A queue
// that does not exist in Redis yet reports zeros.
func NewQueueCollector(insp *asynq.Inspector, queues []string) prometheus.Collector {
	return &queueCollector{
		insp:    insp,
		queues:  slices.Clone(queues),
		ttl:     queueCacheTTL,
		timeout: queueReadTimeout,
	}
}

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasksDesc
	ch <- queueLatencyDesc
	ch <- queuePausedDesc
	ch <- queueUpDesc
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.snapshot()
	if snap.err != nil {
		ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueUpDesc, prometheus.GaugeValue, 1)
	for q, info := range snap.infos {
		counts := []int{info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived}
		for i, state := range QueueStates {
			ch <- prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, float64(counts[i]), q, state)
		}
		ch <- prometheus.MustNewConstMetric(queueLatencyDesc, prometheus.GaugeValue, info.Latency.Seconds(), q)
		paused := 0.0
		if info.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(queuePausedDesc, prometheus.GaugeValue, paused, q)
	}
}

// snapshot returns a fresh enough read, sharing one read of Redis between
// concurrent scrapes.
func (c *queueCollector) snapshot() queueSnapshot {
	c.mu.Lock()
	if !c.lastAt.IsZero() && time.Since(c.lastAt) < c.ttl {
		defer c.mu.Unlock()
		return c.last
	}
	done := c.inflight
	if done == nil {
		done = make(chan struct{})
		c.inflight = done
		go c.refresh(done)
	}
	c.mu.Unlock()

	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case <-done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last
	case <-t.C:
		return queueSnapshot{err: fmt.Errorf("read queue stats: no answer from Redis within %s", c.timeout)}
	}
}

func (c *queueCollector) refresh(done chan struct{}) {
	snap := c.read()
	c.mu.Lock()
	c.last, c.lastAt, c.inflight = snap, time.Now(), nil
	c.mu.Unlock()
	close(done)
}

func (c *queueCollector) read() queueSnapshot {
	// Inspector.GetQueueInfo fails for a queue nobody has enqueued to yet,
	// with an error type we cannot match outside asynq; asking for the set
	// of known queues first tells "empty" apart from "Redis failed".
	known, err := c.insp.Queues()
	if err != nil {
		return queueSnapshot{err: fmt.Errorf("list queues: %w", err)}
	}
	queues := c.queues
	if len(queues) == 0 {
		queues = known
	}
	snap := queueSnapshot{infos: make(map[string]asynq.QueueInfo, len(queues))}
	var errs []error
	for _, q := range queues {
		if !slices.Contains(known, q) {
			snap.infos[q] = asynq.QueueInfo{Queue: q}
			continue
		}
		info, err := c.insp.GetQueueInfo(q)
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %q: %w", q, err))
			continue
		}
		snap.infos[q] = *info
	}
	if err := errors.Join(errs...); err != nil {
		return queueSnapshot{err: fmt.Errorf("read queue stats: %w", err)}
	}
	return snap
}
