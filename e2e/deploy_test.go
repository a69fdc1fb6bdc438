package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
)

// TestGracefulShutdown sends SIGTERM to a worker with three tasks in
// flight and four waiting: /readyz turns 503 at once, no waiting task is
// taken, the two that can finish within SHUTDOWN_GRACE do, the one that
// cannot (its upstream hangs) is handed back, and the worker exits 0. A
// new worker then ends all the rest, each once.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := NewStack(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		if strings.HasPrefix(c.Subject, "hang") && c.N == 1 {
			return &simulator.Reply{Hang: true}
		}
		return &simulator.Reply{Delay: 3 * time.Second}
	}})
	const grace = 6 * time.Second
	env := map[string]string{"WORKER_CONCURRENCY": "3", "SHUTDOWN_GRACE": grace.String(), "UPSTREAM_TIMEOUT": "2m"}
	w := s.StartWorker(env)
	// The Go client, not the CLI: the waiting tasks must be queued within
	// milliseconds, well before the slow ones finish.
	c, insp := s.asynqClient()
	var ids []string
	enqueue := func(account string) {
		id, err := enqueueHooked(context.Background(), c, account)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, a := range []string{"hang-1", "slow-1", "slow-2"} {
		enqueue(a)
	}
	poll.Until(t, 30*time.Second, "three requests in flight", func() bool { return len(s.Sim.Calls()) == 3 })
	for i := range 4 {
		enqueue(fmt.Sprintf("waiting-%d", i))
	}

	termAt := time.Now()
	_ = w.cmd.Process.Signal(sigterm)
	var notReadyAfter time.Duration
	for w.Alive() && time.Since(termAt) < 2*time.Second {
		if code, _ := w.Get("/readyz"); code == 503 {
			notReadyAfter = time.Since(termAt)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if notReadyAfter == 0 {
		t.Errorf("/readyz did not answer 503 within 2s of SIGTERM")
	}
	code := w.Stop(grace + 20*time.Second)
	exitedAfter := time.Since(termAt)
	t.Logf("SIGTERM: /readyz 503 after %s, exit %d after %s (SHUTDOWN_GRACE %s)", notReadyAfter.Round(time.Millisecond), code, exitedAfter.Round(time.Millisecond), grace)
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if exitedAfter > grace+5*time.Second {
		t.Errorf("exited %s after SIGTERM, want within SHUTDOWN_GRACE %s (+5s)", exitedAfter, grace)
	}

	got := s.Results()
	finished := map[string]bool{}
	for _, e := range got {
		finished[e.Subject] = true
		if e.FinishedAt.After(termAt.Add(grace)) || e.Status != results.StatusSucceeded {
			t.Errorf("%s: %s at %s, want succeeded within the grace", e.Subject, e.Status, e.FinishedAt.Sub(termAt))
		}
	}
	if len(got) != 2 || !finished["slow-1"] || !finished["slow-2"] {
		t.Errorf("results after the drain: %v, want slow-1 and slow-2 only", finished)
	}
	if n := len(s.Sim.Calls()); n != 3 {
		t.Errorf("upstream saw %d requests, want 3: a draining worker takes no new task", n)
	}
	q, err := insp.GetQueueInfo("default")
	if err != nil {
		t.Fatal(err)
	}
	if q.Active != 0 || q.Pending+q.Retry != 5 {
		t.Errorf("queue after the drain: %d active, %d pending, %d retry; want the hung task and the 4 waiting ones handed back", q.Active, q.Pending, q.Retry)
	}

	s.StartWorker(env)
	all := s.waitEachResult(ids, 60*time.Second)
	checkExactlyOnce(t, all, ids, nil)
	if n := len(s.Sim.CallsFor("hang-1")); n != 2 {
		t.Errorf("the handed-back task was sent %d times, want 2 (cut off, then again)", n)
	}
}

// TestRollingRestart restarts each of three workers in turn (SIGTERM,
// then a new process) while tasks keep arriving: every task ends with
// exactly one result, and every stopped worker exits 0.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	s := NewStack(t, simulator.Options{Latency: 300 * time.Millisecond})
	env := map[string]string{"WORKER_CONCURRENCY": "4", "SHUTDOWN_GRACE": "10s"}
	workers := []*Worker{s.StartWorker(env), s.StartWorker(env), s.StartWorker(env)}
	p := s.startProducer("rolling", 40*time.Millisecond)
	time.Sleep(2 * time.Second)
	for i := range workers {
		before := p.Count()
		if code := workers[i].Stop(30 * time.Second); code != 0 {
			t.Errorf("worker %d exited %d on SIGTERM, want 0", i, code)
		}
		workers[i] = s.StartWorker(env)
		// Let the new one take work before the next goes.
		poll.Until(t, 30*time.Second, "tasks to keep arriving", func() bool { return p.Count() > before+20 })
	}
	acked, doubt := p.Stop()
	t.Logf("%d tasks enqueued during the rolling restart (%d in doubt)", len(acked), len(doubt))
	all := s.waitEachResult(acked, 90*time.Second)
	checkExactlyOnce(t, all, acked, doubt)
	if len(doubt) > 0 {
		t.Errorf("%d enqueues failed with Redis up: %v", len(doubt), doubt)
	}
	for _, w := range workers {
		if !w.Alive() {
			t.Error("a worker of the new generation exited")
		}
	}
}
