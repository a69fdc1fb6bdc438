package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/redistest"
)

type queueSetup struct {
	opt  asynq.RedisConnOpt
	insp *asynq.Inspector
	reg  *prometheus.Registry
}

func setupQueues(t *testing.T) queueSetup {
	t.Helper()
	opt := redistest.ConnOpt(t)
	s := queueSetup{opt: opt, insp: asynq.NewInspector(opt), reg: metrics.NewRegistry()}
	t.Cleanup(func() { s.insp.Close() })
	return s
}

func queueSamples(got map[string][]sample, q string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range got["refreshq_queue_tasks"] {
		if strings.Contains(s.labels, "queue="+q+",") {
			out[s.labels[strings.Index(s.labels, "state=")+len("state="):]] = s.value
		}
	}
	return out
}

func TestQueueCollectorReportsTaskCounts(t *testing.T) {
	s := setupQueues(t)
	busy, empty := redistest.Queue(t, s.opt), redistest.Queue(t, s.opt)
	redistest.Enqueue(t, s.opt, busy, 3)
	redistest.Enqueue(t, s.opt, busy, 2, asynq.ProcessIn(time.Hour))
	archived := redistest.Enqueue(t, s.opt, busy, 1)
	if err := s.insp.ArchiveTask(busy, archived[0]); err != nil {
		t.Fatalf("archive: %v", err)
	}
	if err := metrics.RegisterQueues(s.reg, s.insp, []string{busy, empty}); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, metrics.Handler(s.reg))

	tests := []struct {
		queue string
		want  map[string]float64
	}{
		{busy, map[string]float64{"pending": 3, "active": 0, "scheduled": 2, "retry": 0, "archived": 1}},
		{empty, map[string]float64{"pending": 0, "active": 0, "scheduled": 0, "retry": 0, "archived": 0}},
	}
	for _, tt := range tests {
		if g := queueSamples(got, tt.queue); fmt.Sprint(g) != fmt.Sprint(tt.want) {
			t.Errorf("refreshq_queue_tasks{queue=%q}:\n got  %v\n want %v", tt.queue, g, tt.want)
		}
	}
	if want := []sample{{"", 1}}; !samplesEqual(got["refreshq_queue_stats_up"], want) {
		t.Errorf("refreshq_queue_stats_up = %v, want 1", got["refreshq_queue_stats_up"])
	}
	for _, s := range got["refreshq_queue_latency_seconds"] {
		switch s.labels {
		case "queue=" + busy:
			if s.value <= 0 || s.value > 60 {
				t.Errorf("latency of a queue with pending tasks = %v s, want a small positive age", s.value)
			}
		case "queue=" + empty:
			if s.value != 0 {
				t.Errorf("latency of a queue that does not exist = %v, want 0", s.value)
			}
		}
	}
	if n := len(got["refreshq_queue_latency_seconds"]); n != 2 {
		t.Errorf("refreshq_queue_latency_seconds has %d series, want one per queue (2): %v", n, got["refreshq_queue_latency_seconds"])
	}
}

func TestQueueCollectorCachesBriefly(t *testing.T) {
	s := setupQueues(t)
	q := redistest.Queue(t, s.opt)
	redistest.Enqueue(t, s.opt, q, 1)
	if err := metrics.RegisterQueues(s.reg, s.insp, []string{q}); err != nil {
		t.Fatal(err)
	}
	if got := queueSamples(scrape(t, metrics.Handler(s.reg)), q)["pending"]; got != 1 {
		t.Fatalf("pending = %v, want 1", got)
	}

	redistest.Enqueue(t, s.opt, q, 1)
	if got := queueSamples(scrape(t, metrics.Handler(s.reg)), q)["pending"]; got != 1 {
		t.Errorf("pending right after the first scrape = %v, want the cached 1 (no second read of Redis)", got)
	}
	time.Sleep(1600 * time.Millisecond)
	if got := queueSamples(scrape(t, metrics.Handler(s.reg)), q)["pending"]; got != 2 {
		t.Errorf("pending after the cache expired = %v, want 2", got)
	}
}

func TestQueueCollectorRedisDown(t *testing.T) {
	mr := redistest.Mini(t)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: mr.Addr()})
	t.Cleanup(func() { insp.Close() })
	mr.Close()

	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterQueues(reg, insp, []string{"default"}); err != nil {
		t.Fatal(err)
	}
	m.ResultPublished("succeeded")

	got := scrape(t, metrics.Handler(reg)) // fails the test unless it answers 200
	if want := []sample{{"", 0}}; !samplesEqual(got["refreshq_queue_stats_up"], want) {
		t.Errorf("refreshq_queue_stats_up = %v, want 0 with Redis down", got["refreshq_queue_stats_up"])
	}
	if len(got["refreshq_queue_tasks"]) != 0 {
		t.Errorf("queue gauges reported with Redis down: %v", got["refreshq_queue_tasks"])
	}
	if want := []sample{{"status=failed", 0}, {"status=succeeded", 1}}; !samplesEqual(got["refreshq_results_published_total"], want) {
		t.Errorf("the worker's own counters must survive a Redis outage: %v", got["refreshq_results_published_total"])
	}
}
