package e2e

import (
	"fmt"
	"net/http"
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
	c, _ := s.asynqClient()
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

// TestRetryAfterCeiling: one 429 asking for a month (Retry-After: 2592000)
// pauses the API key, and the task that got it, for RETRY_AFTER_MAX only;
// the worker logs and counts the capped hint.
func TestRetryAfterCeiling(t *testing.T) {
	s := NewStack(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		if c.Subject == "month" {
			return &simulator.Reply{Status: 429, Header: http.Header{"Retry-After": {"2592000"}}}
		}
		return nil
	}})
	w := s.StartWorker(map[string]string{"RETRY_AFTER_MAX": "3s", "HOOKED_RATE": "off"})
	month := s.MustEnqueue("hooked", "--account", "month")
	// The month-long hint must not outlive the ceiling: the next refresh on
	// the same key goes through within it.
	deadline := time.Now().Add(20 * time.Second)
	for len(s.Sim.CallsFor("month")) < 2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(s.Sim.CallsFor("month")); n < 2 {
		t.Fatalf("the task was tried %d times in 20 s; with RETRY_AFTER_MAX=3s it should have been tried again", n)
	}
	calls := s.Sim.CallsFor("month")
	if gap := calls[1].At.Sub(calls[0].At); gap < 3*time.Second || gap > 15*time.Second {
		t.Errorf("second try %v after the first; want about RETRY_AFTER_MAX (3s)", gap)
	}
	if e := ResultFor(s.Results(), month); len(e) != 0 {
		t.Errorf("the task ended (%+v); it should still be waiting, not failed by a month-long hint", e)
	}
	_, body := w.Get("/metrics")
	if !regexp.MustCompile(`refreshq_upstream_hints_capped_total\{provider="hooked",source="retry_after"\} [1-9]`).MatchString(body) {
		t.Errorf("/metrics lacks the capped hint:\n%s", grep(body, "hints_capped"))
	}
	if !strings.Contains(w.Stderr.String(), "RETRY_AFTER_MAX") {
		t.Errorf("no log line for the capped hint:\n%s", tail(w.Stderr.String(), 20))
	}
}
