package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
)

// TestPoisonUpstream: an upstream that answers 200 with a 50 MB body, and
// one that never answers. The worker reads at most 1 MiB of a body, so the
// first ends invalid_response after one request and the worker's memory
// stays bounded; the second times out on every try (UPSTREAM_TIMEOUT) and
// ends timeout after MAX_RETRIES. The worker stays up and ready.
// (Payloads that are not JSON, too large or of an unknown type are in
// TestForeignProducers.)
func TestPoisonUpstream(t *testing.T) {
	t.Parallel()
	huge := bytes.Repeat([]byte("x"), 50<<20)
	s := NewStack(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		switch {
		case strings.HasPrefix(c.Subject, "huge"):
			return &simulator.Reply{Body: huge}
		case strings.HasPrefix(c.Subject, "hang"):
			return &simulator.Reply{Hang: true}
		}
		return nil
	}})
	w := s.StartWorker(map[string]string{
		"UPSTREAM_TIMEOUT": "1s", "MAX_RETRIES": "1", "RETRY_INITIAL": "100ms", "WORKER_CONCURRENCY": "8",
	})
	before := rssMB(t, w.Pid())
	c, _ := s.asynqClient()
	var ids []string
	for _, account := range []string{"huge-1", "huge-2", "huge-3", "huge-4", "huge-5", "huge-6", "hang-1", "hang-2"} {
		id, err := enqueueHooked(t.Context(), c, account)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	all := s.waitEachResult(ids, 60*time.Second)
	checkExactlyOnce(t, all, ids, nil)
	after := rssMB(t, w.Pid())
	t.Logf("worker RSS %.0f MB before, %.0f MB after six 50 MB bodies (race-detector build)", before, after)
	// Six bodies read whole would be 300 MB.
	if after > 200 {
		t.Errorf("worker RSS %.0f MB after the 50 MB bodies, want under 200 MB", after)
	}
	for _, e := range all {
		calls := len(s.Sim.CallsFor(e.Subject))
		switch {
		case strings.HasPrefix(e.Subject, "huge"):
			if e.Status != results.StatusFailed || e.ErrorKind != results.KindInvalidResponse || e.HTTPStatus != 200 || calls != 1 || len(e.Result) != 0 {
				t.Errorf("%s: %s/%s http %d after %d calls (%.100s); want one invalid_response", e.Subject, e.Status, e.ErrorKind, e.HTTPStatus, calls, e.Error)
			}
		case strings.HasPrefix(e.Subject, "hang"):
			if e.Status != results.StatusFailed || e.ErrorKind != results.KindTimeout || e.HTTPStatus != 0 || calls != 2 || e.Attempts != 2 {
				t.Errorf("%s: %s/%s attempts %d after %d calls; want timeout after 2 tries", e.Subject, e.Status, e.ErrorKind, e.Attempts, calls)
			}
		}
	}
	if code, body := w.Get("/readyz"); code != 200 || !w.Alive() {
		t.Errorf("worker after the poison: alive %v, /readyz %d %s", w.Alive(), code, body)
	}
}
