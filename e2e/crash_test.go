package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// TestKillNineMidTask kills one of two workers with SIGKILL while its
// tasks wait on a slow upstream. Every task still ends with exactly one
// result, those the dead worker held on the survivor, including a foreign
// producer's MaxRetry(0) task, which asynq's recoverer archives without
// running a handler (the sweeper gives it its result). It measures the
// time to recovery, which asynq's 30 s lease and once-a-minute recoverer
// govern; this is the one test that waits for it (about 1-2 minutes).
func TestKillNineMidTask(t *testing.T) {
	t.Parallel()
	s := NewStack(t, simulator.Options{Latency: 3 * time.Second})
	// Each worker its own API key, so the simulator tells whose request
	// each call was.
	keyA, keyB := "hooked-key-a-"+t.Name(), "hooked-key-b-"+t.Name()
	a := s.StartWorker(map[string]string{"WORKER_CONCURRENCY": "4", "HOOKED_API_KEY": keyA})
	b := s.StartWorker(map[string]string{"WORKER_CONCURRENCY": "4", "HOOKED_API_KEY": keyB})
	c, _ := s.asynqClient()
	ctx := context.Background()

	// asynq's defaults but no retries, as a foreign service might send.
	foreign, err := c.Enqueue(asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(`{"account_id":"foreign-1"}`)), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{foreign.ID}
	for i := range 20 {
		id, err := enqueueHooked(ctx, c, fmt.Sprintf("acct-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	// Kill whichever worker took the foreign task, mid-request.
	poll.Until(t, 30*time.Second, "the foreign task's request", func() bool { return len(s.Sim.CallsFor("foreign-1")) > 0 })
	victim, survivor, victimKey := a, b, keyA
	if s.Sim.CallsFor("foreign-1")[0].APIKey == keyB {
		victim, survivor, victimKey = b, a, keyB
	}
	done := map[string]bool{}
	for _, e := range s.Results() {
		done[e.Subject] = true
	}
	victim.Kill()
	killedAt := time.Now()
	var inFlight []string // subjects whose request the dead worker had sent
	for _, call := range s.Sim.Calls() {
		if call.APIKey == victimKey && !done[call.Subject] {
			inFlight = append(inFlight, call.Subject)
		}
	}
	t.Logf("killed worker %d with %d tasks in flight: %v", victim.Pid(), len(inFlight), inFlight)

	all := s.waitEachResult(ids, 4*time.Minute)
	checkExactlyOnce(t, all, ids, nil)
	bySubject := map[string]results.Entry{}
	for _, e := range all {
		bySubject[e.Subject] = e
	}
	var recovery time.Duration
	for _, subject := range inFlight {
		e := bySubject[subject]
		recovery = max(recovery, e.FinishedAt.Sub(killedAt))
		if !finishedBy(e, survivor) {
			t.Errorf("%s finished by %s, want the survivor (pid %d)", subject, e.Worker, survivor.Pid())
		}
		calls := len(s.Sim.CallsFor(subject))
		if subject == "foreign-1" {
			// Archived by asynq's recoverer, never run again: the sweeper's.
			if e.Status != results.StatusFailed || e.ErrorKind != results.KindNetwork || !strings.Contains(e.Error, "stopped") || calls != 1 || e.Attempts != 1 {
				t.Errorf("foreign task: %+v after %d calls; want one failed network result saying its worker stopped, attempts 1", e, calls)
			}
			continue
		}
		// At least once upstream: the killed request, then the re-run's.
		if e.Status != results.StatusSucceeded || calls != 2 || e.Attempts != 2 {
			t.Errorf("%s: status %s, attempts %d, %d upstream calls; want succeeded after 2 calls, both counted", subject, e.Status, e.Attempts, calls)
		}
	}
	t.Logf("time to recovery after kill -9 (last in-flight task's result): %s", recovery.Round(time.Second))
	// 30 s lease + 30 s of recoverer margin + up to 60 s to its next pass
	// + 15 s to the sweeper's + the upstream's 3 s, with room for a slow
	// machine.
	if recovery > 3*time.Minute {
		t.Errorf("recovery took %s, want within 3m", recovery)
	}
	if !survivor.Alive() {
		t.Error("the survivor exited")
	}
}

// TestCrashAroundPublish kills a worker (SIGKILL from inside, built with
// -tags faultinject) at the two worst moments: just before it publishes a
// task's result, and just after, before asynq hears the task is done. The
// re-run on another worker publishes exactly one result either way: the
// publish is keyed by task id and run, in one Lua script.
func TestCrashAroundPublish(t *testing.T) {
	t.Parallel()
	bin, err := faultWorkerBin()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		point string
		calls int // upstream requests in all
	}{
		{"crash-before-publish", 2}, // the result was lost with the worker: the re-run asks again
		{"crash-after-publish", 1},  // the result is in: the re-run ends the task without asking
	} {
		t.Run(tc.point, func(t *testing.T) {
			t.Parallel()
			s := NewStack(t, simulator.Options{})
			w := s.startWorkerBin(bin, map[string]string{"REFRESHQ_FAULT": tc.point})
			id := s.MustEnqueue("hooked", "--account", "acct-1")
			select {
			case <-w.Done():
			case <-time.After(60 * time.Second):
				t.Fatal("the fault-injection worker did not crash")
			}
			if !killedBySignal(w) {
				t.Fatalf("worker ended with %v, want killed by SIGKILL at %s", w.cmd.ProcessState, tc.point)
			}
			before := len(s.Results())
			if want := map[string]int{"crash-before-publish": 0, "crash-after-publish": 1}[tc.point]; before != want {
				t.Fatalf("%d results right after the crash, want %d", before, want)
			}

			if n := ageLeases(t, s.RDB, "default"); n != 1 {
				t.Fatalf("%d leases held by the dead worker, want 1", n)
			}
			w2 := s.StartWorker(nil)
			_, insp := s.asynqClient()
			// The task ends (asynq deletes a finished task) on the new worker.
			poll.Until(t, 60*time.Second, "the re-run to end the task", func() bool {
				_, err := insp.GetTaskInfo("default", id)
				return err != nil && strings.Contains(err.Error(), "not found")
			})
			all := s.waitEachResult([]string{id}, 30*time.Second)
			checkExactlyOnce(t, all, []string{id}, nil)
			e := all[0]
			if e.Status != results.StatusSucceeded || e.Attempts != tc.calls {
				t.Errorf("result %s attempts=%d, want succeeded with attempts=%d", e.Status, e.Attempts, tc.calls)
			}
			if got := len(s.Sim.CallsFor("acct-1")); got != tc.calls {
				t.Errorf("upstream saw %d requests, want %d", got, tc.calls)
			}
			wantWriter := w2 // the re-run publishes
			if tc.point == "crash-after-publish" {
				wantWriter = w // the dead worker's entry stands
			}
			if !finishedBy(e, wantWriter) {
				t.Errorf("entry written by %s, want pid %d", e.Worker, wantWriter.Pid())
			}
		})
	}
}
