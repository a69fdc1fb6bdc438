package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// TestForeignProducersCannotPoison drives a real worker with what a
// careless or hostile asynq producer can enqueue: 30 task types refreshq
// does not handle, an enqueued_at a year ahead and a 60 KB string meta.
// Metrics keep one type label for all unknown types, the future task's
// duration is not negative, and the bad meta is not copied into its result.
func TestForeignProducersCannotPoison(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	w := s.StartWorker(nil)
	opt, err := asynq.ParseRedisURI(s.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := asynq.NewClient(opt)
	defer c.Close()
	enqueue := func(typ, payload string) string {
		t.Helper()
		info, err := c.Enqueue(asynq.NewTask(typ, []byte(payload)))
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	for i := range 30 {
		enqueue(fmt.Sprintf("foreign:type_%02d", i), `{"account_id":"a1"}`)
	}
	future := time.Now().Add(365 * 24 * time.Hour).UTC().Format(time.RFC3339)
	futureID := enqueue(tasks.TypeHookedAccountRefresh, `{"account_id":"acc-1","enqueued_at":"`+future+`"}`)
	metaID := enqueue(tasks.TypeHookedAccountRefresh, `{"account_id":"acc-2","meta":"`+strings.Repeat("m", 60<<10)+`"}`)

	all := s.WaitResults(32, 60*time.Second)
	unknown := 0
	for _, e := range all {
		if e.ErrorKind == results.KindUnknownTaskType {
			unknown++
		}
	}
	if unknown != 30 {
		t.Errorf("%d unknown_task_type results, want 30", unknown)
	}
	if e := ResultFor(all, futureID); len(e) != 1 || e[0].Status != results.StatusSucceeded || e[0].DurationMS() < 0 || e[0].EnqueuedAt.After(e[0].FinishedAt) {
		t.Errorf("far-future enqueued_at: %+v; want one success with enqueued_at clamped, duration_ms >= 0", e)
	}
	if e := ResultFor(all, metaID); len(e) != 1 || e[0].Meta != "{}" || e[0].ErrorKind != results.KindInvalidPayload || !strings.Contains(e[0].Error, "meta") {
		t.Errorf("60 KB meta: %.300v; want one invalid_payload result with meta {} and an error naming meta", e)
	}

	code, body := w.Get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	if strings.Contains(body, "foreign:") {
		t.Errorf("/metrics names the foreign types:\n%s", grep(body, "refreshq_tasks_total"))
	}
	if !regexp.MustCompile(`refreshq_tasks_total\{[^}]*type="unknown"[^}]*\} 30\b`).MatchString(body) {
		t.Errorf("/metrics lacks 30 tasks of type=\"unknown\":\n%s", grep(body, "refreshq_tasks_total"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
