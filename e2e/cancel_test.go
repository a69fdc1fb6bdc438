package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/results"
)

// hangScript keeps a request to an account named hang-... in flight until
// the worker gives up on it, so its task stays running.
func hangScript(c simulator.Call) *simulator.Reply {
	switch {
	case strings.HasPrefix(c.Subject, "hang"):
		return &simulator.Reply{Hang: true}
	case strings.HasPrefix(c.Subject, "down"):
		return &simulator.Reply{Status: 503}
	}
	return nil
}

const cancelToken = "cancel-e2e-token"

// apiCall sends an authorised request to a worker's enqueue API.
func apiCall(t *testing.T, w *Worker, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+w.HTTP+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cancelToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", method, path, b)
	}
	return resp.StatusCode, m
}

// apiEnqueue enqueues one refresh over HTTP and returns its task id.
func apiEnqueue(t *testing.T, w *Worker, body string) string {
	t.Helper()
	code, m := apiCall(t, w, "POST", "/v1/refreshes", body)
	ids, _ := m["task_ids"].([]any)
	if code != http.StatusAccepted || len(ids) != 1 {
		t.Fatalf("POST /v1/refreshes %s = %d %v", body, code, m)
	}
	id, _ := ids[0].(string)
	return id
}

// waitActive waits until a worker runs the task.
func waitActive(t *testing.T, insp *asynq.Inspector, queue, id string) {
	t.Helper()
	poll.Until(t, 20*time.Second, "task "+id+" to run", func() bool {
		info, err := insp.GetTaskInfo(queue, id)
		return err == nil && info.State == asynq.TaskStateActive
	})
}

// onlyCancelled checks that a task has exactly one result, the cancelled
// one, naming who cancelled it.
func onlyCancelled(t *testing.T, s *Stack, id, actor string) results.Entry {
	t.Helper()
	got := ResultFor(s.Results(), id)
	if len(got) != 1 {
		t.Fatalf("task %s has %d results, want exactly 1: %+v", id, len(got), got)
	}
	e := got[0]
	if e.Status != results.StatusFailed || e.ErrorKind != results.KindCancelled || !strings.Contains(e.Error, "cancelled by "+actor) {
		t.Errorf("task %s result = %s/%s %q; want failed/cancelled, error naming %s", id, e.Status, e.ErrorKind, e.Error, actor)
	}
	// A task cancelled before it was due has a future enqueued_at in its
	// payload; duration_ms is never negative all the same.
	if e.EnqueuedAt.After(e.FinishedAt) || e.DurationMS() < 0 {
		t.Errorf("task %s result: enqueued_at %s after finished_at %s (duration_ms %d)", id, e.EnqueuedAt, e.FinishedAt, e.DurationMS())
	}
	return e
}

// TestCancel cancels pending, scheduled and running tasks from the CLI and
// over HTTP, with real worker and enqueue processes, and checks that each
// ends with exactly one cancelled result, that a waiter returns at once,
// and that an ended or unknown task is reported as such.
func TestCancel(t *testing.T) {
	s := NewStack(t, simulator.Options{Script: hangScript})
	// Tasks on "held" stay pending: the worker serves it, but it is paused.
	producerEnv := map[string]string{"QUEUES": "default=1,held=1"}
	_, insp := s.asynqClient()
	if err := insp.PauseQueue("held"); err != nil {
		t.Fatalf("pause held: %v", err)
	}
	w := s.StartWorker(map[string]string{"ENQUEUE_TOKEN": cancelToken, "QUEUES": "default=1,held=1", "UPSTREAM_TIMEOUT": "2m", "RETRY_INITIAL": "1m"})
	enqueue := func(args ...string) string {
		t.Helper()
		out, errs, code := s.Enqueue(producerEnv, "", args...)
		if code != 0 {
			t.Fatalf("enqueue %v: exit %d\n%s", args, code, errs)
		}
		return strings.TrimSpace(out)
	}
	cancelCLI := func(args ...string) (string, string, int) {
		t.Helper()
		return s.Enqueue(producerEnv, "", append([]string{"cancel"}, args...)...)
	}

	t.Run("CLI pending", func(t *testing.T) {
		id := enqueue("hooked", "--account", "pending-1", "--queue", "held")
		out, errs, code := cancelCLI(id)
		if code != 0 || strings.TrimSpace(out) != id+" cancelled" {
			t.Fatalf("cancel = exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errs, id+" cancelled")
		}
		e := onlyCancelled(t, s, id, "CLI")
		if e.Queue != "held" || e.Subject != "pending-1" || e.Provider != "hooked" {
			t.Errorf("result names queue %q, subject %q, provider %q", e.Queue, e.Subject, e.Provider)
		}
		if _, err := insp.GetTaskInfo("held", id); err == nil {
			t.Errorf("task %s is still in asynq after its cancel", id)
		}
	})

	t.Run("CLI scheduled, with a waiter", func(t *testing.T) {
		id := enqueue("hooked", "--account", "scheduled-1", "--in", "1h")
		// A second process waits on the task as a producer would.
		var wout syncbuf.Buffer
		wait := exec.Command(bins.enqueue, "hooked", "--account", "scheduled-waiter", "--in", "1h", "--wait", "60s")
		wait.Env = s.Env(producerEnv)
		wait.Stdout = &wout
		if err := wait.Start(); err != nil {
			t.Fatal(err)
		}
		var waitedID string
		poll.Until(t, 20*time.Second, "the waiter to print its task id", func() bool {
			waitedID, _, _ = strings.Cut(wout.String(), "\n")
			return strings.Contains(wout.String(), "\n")
		})
		start := time.Now()
		out, errs, code := cancelCLI(id, waitedID)
		if code != 0 || !strings.Contains(out, id+" cancelled") || !strings.Contains(out, waitedID+" cancelled") {
			t.Fatalf("cancel = exit %d, stdout %q, stderr %q", code, out, errs)
		}
		err := wait.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("waiter exit = %v, want 1 (a failed result)", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("waiter returned %s after the cancel, want at once", took)
		}
		if !strings.Contains(wout.String(), `"error_kind":"cancelled"`) {
			t.Errorf("waiter printed %q, want the cancelled result", wout.String())
		}
		onlyCancelled(t, s, id, "CLI")
		onlyCancelled(t, s, waitedID, "CLI")
	})

	t.Run("CLI running", func(t *testing.T) {
		id := enqueue("hooked", "--account", "hang-cli")
		waitActive(t, insp, "default", id)
		start := time.Now()
		out, errs, code := cancelCLI(id)
		if code != 0 || strings.TrimSpace(out) != id+" cancelled" {
			t.Fatalf("cancel = exit %d, stdout %q, stderr %q", code, out, errs)
		}
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("cancel of a running task took %s, want within seconds", took)
		}
		e := onlyCancelled(t, s, id, "CLI")
		if e.Attempts != 1 {
			t.Errorf("attempts = %d, want 1 (the request in flight)", e.Attempts)
		}
		// The operator reading the worker's log is told the task was
		// cancelled, never that it will run again.
		for _, line := range strings.Split(w.Stderr.String(), "\n") {
			if strings.Contains(line, id) && strings.Contains(line, "will run again") {
				t.Errorf("the worker logged %s for the cancelled task", line)
			}
		}
		// asynq hands the cancelled task back and a worker sees it again:
		// it must not add a second result.
		time.Sleep(4 * time.Second)
		onlyCancelled(t, s, id, "CLI")
		if n := len(callsOf(s.Sim.Calls(), "hooked")); n == 0 {
			t.Errorf("the upstream saw no request for the running task")
		}
	})

	t.Run("CLI retrying", func(t *testing.T) {
		id := enqueue("hooked", "--account", "down-1")
		poll.Until(t, 20*time.Second, "task "+id+" to wait for its retry", func() bool {
			info, err := insp.GetTaskInfo("default", id)
			return err == nil && info.State == asynq.TaskStateRetry
		})
		out, errs, code := cancelCLI(id)
		if code != 0 || strings.TrimSpace(out) != id+" cancelled" {
			t.Fatalf("cancel = exit %d, stdout %q, stderr %q", code, out, errs)
		}
		e := onlyCancelled(t, s, id, "CLI")
		if e.Attempts != 1 || e.HTTPStatus != 503 || !strings.Contains(e.Error, "tried again") {
			t.Errorf("result attempts=%d http_status=%d error=%q; want the one 503 it got, and where it was", e.Attempts, e.HTTPStatus, e.Error)
		}
	})

	t.Run("record without asynq's message", func(t *testing.T) {
		// asynq's pub/sub cancel can be lost; the record alone must do.
		id := enqueue("hooked", "--account", "hang-record")
		waitActive(t, insp, "default", id)
		if err := s.RDB.Set(t.Context(), "refreshq:cancel:"+id, "test", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, "the cancelled result", func() bool { return len(ResultFor(s.Results(), id)) > 0 })
		onlyCancelled(t, s, id, "test")
	})

	t.Run("HTTP pending, running, ended, unknown", func(t *testing.T) {
		pending := apiEnqueue(t, w, `{"provider":"hooked","account_id":"pending-http","queue":"held"}`)
		code, m := apiCall(t, w, "DELETE", "/v1/refreshes/"+pending, "")
		if code != http.StatusOK || m["state"] != "cancelled" {
			t.Fatalf("DELETE pending = %d %v, want 200 cancelled", code, m)
		}
		if r, _ := m["result"].(map[string]any); r == nil || r["error_kind"] != "cancelled" {
			t.Errorf("DELETE pending body's result = %v, want the cancelled result", m["result"])
		}
		onlyCancelled(t, s, pending, "HTTP")

		running := apiEnqueue(t, w, `{"provider":"hooked","account_id":"hang-http"}`)
		waitActive(t, insp, "default", running)
		code, m = apiCall(t, w, "DELETE", "/v1/refreshes/"+running, "")
		if code != http.StatusOK && code != http.StatusAccepted {
			t.Fatalf("DELETE running = %d %v, want 200 or 202", code, m)
		}
		poll.Until(t, 10*time.Second, "the cancelled result", func() bool { return len(ResultFor(s.Results(), running)) > 0 })
		onlyCancelled(t, s, running, "HTTP")

		code, m = apiCall(t, w, "DELETE", "/v1/refreshes/"+running, "")
		if code != http.StatusConflict || m["state"] != "ended" {
			t.Errorf("DELETE of an ended task = %d %v, want 409 ended", code, m)
		}
		onlyCancelled(t, s, running, "HTTP")

		code, m = apiCall(t, w, "DELETE", "/v1/refreshes/no-such-task", "")
		if code != http.StatusNotFound {
			t.Errorf("DELETE of an unknown task = %d %v, want 404", code, m)
		}
	})

	t.Run("CLI ended and unknown", func(t *testing.T) {
		id := enqueue("hooked", "--account", "done-1", "--wait", "30s")
		id, _, _ = strings.Cut(id, "\n")
		before := ResultFor(s.Results(), id)
		out, errs, code := cancelCLI(id)
		if code != 0 || out != "" || !strings.Contains(errs, "had already ended: succeeded") {
			t.Errorf("cancel of an ended task = exit %d, stdout %q, stderr %q; want exit 0 and a message", code, out, errs)
		}
		if after := ResultFor(s.Results(), id); len(after) != len(before) || after[0].Status != results.StatusSucceeded {
			t.Errorf("results of the ended task changed: %+v", after)
		}
		_, errs, code = cancelCLI("no-such-task")
		if code != 1 || !strings.Contains(errs, "unknown task") {
			t.Errorf("cancel of an unknown task = exit %d, stderr %q; want exit 1 saying so", code, errs)
		}
		_, errs, code = cancelCLI()
		if code != 2 {
			t.Errorf("cancel without ids = exit %d (%s), want 2", code, errs)
		}
	})
}
