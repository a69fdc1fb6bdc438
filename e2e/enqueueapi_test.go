package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/junk"
	"github.com/refreshq/refreshq/internal/simulator"
)

// apiRaw sends one request to a worker's enqueue API and returns the
// status and the body.
func apiRaw(t *testing.T, w *Worker, method, path string, body []byte) (int, []byte, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+w.HTTP+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer e2e-token")
	start := time.Now()
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, time.Since(start)
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestEnqueueAPIJunkKeepsWorkerSmall sends 10 MiB bodies of junk to a real
// worker: each is answered with a 4xx within 2 s, and the worker's peak
// RSS grows by less than 100 MB over all of them.
func TestEnqueueAPIJunkKeepsWorkerSmall(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	w := s.StartWorker(map[string]string{"ENQUEUE_TOKEN": "e2e-token"})
	before := peakRSS(t, w.cmd.Process.Pid)
	for _, tc := range junk.Bodies() {
		code, body, took := apiRaw(t, w, "POST", "/v1/refreshes", tc.Data)
		t.Logf("%s: %d in %s: %.100s", tc.Name, code, took.Round(time.Millisecond), body)
		if code < 400 || code > 499 || took > 2*time.Second {
			t.Errorf("%s: %d after %s, want a 4xx within 2s", tc.Name, code, took)
		}
	}
	grew := peakRSS(t, w.cmd.Process.Pid) - before
	t.Logf("peak RSS grew %d MB", grew>>20)
	if grew >= 100<<20 {
		t.Errorf("peak RSS grew %d MB, want < 100 MB", grew>>20)
	}
}

// TestEnqueueAPIParity drives a real worker over HTTP as a producer in
// another language would: the same task_id twice, a long-poll for the
// result, typed JSON, and the 404's state.
func TestEnqueueAPIParity(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	w := s.StartWorker(map[string]string{"ENQUEUE_TOKEN": "e2e-token"})
	refresh := `{"provider":"hooked","account_id":"parity-1","task_id":"parity-task-1","meta":{"n":1}}`
	for i, want := range []string{`"task_ids":["parity-task-1"]}`, `"existing":[{"index":0,"task_id":"parity-task-1"}]`} {
		code, body, _ := apiRaw(t, w, "POST", "/v1/refreshes", []byte(refresh))
		if code != http.StatusAccepted || !strings.Contains(string(body), want) {
			t.Fatalf("POST #%d: %d %s, want 202 with %s", i+1, code, body, want)
		}
	}
	code, body, took := apiRaw(t, w, "GET", "/v1/refreshes/parity-task-1?wait=30s", nil)
	if code != http.StatusOK {
		t.Fatalf("GET ?wait=30s: %d %s after %s", code, body, took)
	}
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res["status"] != "succeeded" || res["attempts"] != 1.0 || res["v"] != 1.0 {
		t.Errorf("result %s: want succeeded, attempts 1 and v 1 as numbers", body)
	}
	if meta, ok := res["meta"].(map[string]any); !ok || meta["n"] != 1.0 {
		t.Errorf("meta = %#v, want the object {\"n\":1}", res["meta"])
	}
	if _, ok := res["result"].(map[string]any); !ok {
		t.Errorf("result = %#v, want the upstream's JSON object", res["result"])
	}
	if n := len(s.Results()); n != 1 {
		t.Errorf("%d results in the stream, want 1: the second POST enqueued nothing", n)
	}
	code, body, _ = apiRaw(t, w, "POST", "/v1/refreshes", []byte(`{"provider":"hooked","account_id":"parity-2","task_id":"parity-task-1"}`))
	if code != http.StatusConflict {
		t.Errorf("same task_id, other refresh: %d %s, want 409", code, body)
	}
	code, body, _ = apiRaw(t, w, "POST", "/v1/refreshes", []byte(`{"provider":"hooked","account_id":"parity-3","in":"1h"}`))
	var enq struct {
		TaskIDs []string `json:"task_ids"`
	}
	if err := json.Unmarshal(body, &enq); err != nil || code != http.StatusAccepted || len(enq.TaskIDs) != 1 {
		t.Fatalf("POST delayed: %d %s", code, body)
	}
	code, body, took = apiRaw(t, w, "GET", "/v1/refreshes/"+enq.TaskIDs[0]+"?wait=1s", nil)
	if code != http.StatusNotFound || !strings.Contains(string(body), `"state":"scheduled"`) || took < time.Second {
		t.Errorf("GET a scheduled task with ?wait=1s: %d %s after %s, want 404 with state scheduled after 1s", code, body, took)
	}
}
