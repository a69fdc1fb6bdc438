package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// script answers by subject, so one worker serves every case of a table.
func script(c simulator.Call) *simulator.Reply {
	switch {
	case strings.HasPrefix(c.Subject, "busy"):
		if c.N == 1 {
			return &simulator.Reply{Status: 429, Header: http.Header{"Retry-After": {"2"}}}
		}
	case strings.HasPrefix(c.Subject, "busydate"):
	case strings.HasPrefix(c.Subject, "flaky"):
		if c.N <= 2 {
			return &simulator.Reply{Status: 500}
		}
	case strings.HasPrefix(c.Subject, "broken"):
		return &simulator.Reply{Status: 500}
	case strings.HasPrefix(c.Subject, "gone"):
		return &simulator.Reply{Status: 404}
	case strings.HasPrefix(c.Subject, "garbled"):
		return &simulator.Reply{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte("<html>oops</html>")}
	}
	return nil
}

// TestRefreshPipeline runs the real worker and the real enqueue CLI
// against real Redis and the simulator, one task per behaviour, and checks
// what a consumer of the results stream and the upstream each see.
func TestRefreshPipeline(t *testing.T) {
	s := NewStack(t, simulator.Options{Script: script})
	w := s.StartWorker(map[string]string{
		"MAX_RETRIES":        "2",
		"RETRY_INITIAL":      "1s",
		"BUNDLE_SOCIAL_RATE": "off", // this test is about retries, not budgets
	})

	type want struct {
		status   results.Status
		kind     results.ErrorKind
		calls    int
		httpCode int
		minGaps  []time.Duration // least time between consecutive calls
		maxGaps  []time.Duration
	}
	cases := []struct {
		name string
		args []string
		want want
	}{
		{"success", []string{"hooked", "--account", "ok-1", "--meta", `{"request_id":"r-1"}`},
			want{status: results.StatusSucceeded, calls: 1, httpCode: 200}},
		{"bundle success", []string{"bundle-social", "--team", "team-1", "--platform", "TIKTOK"},
			want{status: results.StatusSucceeded, calls: 1, httpCode: 200}},
		{"429 with Retry-After 2 then success", []string{"hooked", "--account", "busy-1"},
			want{status: results.StatusSucceeded, calls: 2, httpCode: 200, minGaps: []time.Duration{2 * time.Second}, maxGaps: []time.Duration{5 * time.Second}}},
		// RETRY_INITIAL=1s with up to +50% jitter: 1–1.5 s, then 2–3 s; plus
		// up to 1 s of rounding to asynq's whole seconds and 250 ms
		// forwarding. Never sooner than the nominal curve.
		{"500, 500, 200 follows the backoff", []string{"hooked", "--account", "flaky-1"},
			want{status: results.StatusSucceeded, calls: 3, httpCode: 200,
				minGaps: []time.Duration{time.Second, 2 * time.Second},
				maxGaps: []time.Duration{3500 * time.Millisecond, 5 * time.Second}}},
		{"404 fails after one call", []string{"hooked", "--account", "gone-1"},
			want{status: results.StatusFailed, kind: results.KindNotFound, calls: 1, httpCode: 404}},
		{"always 500 fails after MAX_RETRIES", []string{"bundle-social", "--team", "broken-team", "--platform", "YOUTUBE"},
			want{status: results.StatusFailed, kind: results.KindServer, calls: 3, httpCode: 500}},
		{"200 that is not JSON", []string{"hooked", "--account", "garbled-1"},
			want{status: results.StatusFailed, kind: results.KindInvalidResponse, calls: 1, httpCode: 200}},
	}
	ids := map[string]string{}
	for _, c := range cases {
		ids[c.name] = s.MustEnqueue(c.args...)
	}
	all := s.WaitResults(len(cases), 60*time.Second)
	time.Sleep(2 * time.Second) // a second entry for any task would show by now
	all = s.Results()
	if len(all) != len(cases) {
		t.Fatalf("stream has %d entries, want exactly %d (one per task)", len(all), len(cases))
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ResultFor(all, ids[c.name])
			if len(got) != 1 {
				t.Fatalf("%d entries for task %s, want 1", len(got), ids[c.name])
			}
			e := got[0]
			if e.Status != c.want.status || e.ErrorKind != c.want.kind {
				t.Errorf("status %s/%q, want %s/%q (error: %s)", e.Status, e.ErrorKind, c.want.status, c.want.kind, e.Error)
			}
			if e.HTTPStatus != c.want.httpCode {
				t.Errorf("http_status %d, want %d", e.HTTPStatus, c.want.httpCode)
			}
			calls := s.Sim.CallsFor(e.Subject)
			if len(calls) != c.want.calls || e.Attempts != c.want.calls {
				t.Errorf("upstream saw %d calls and the result says attempts=%d, want %d", len(calls), e.Attempts, c.want.calls)
			}
			for i := 1; i < len(calls) && i-1 < len(c.want.minGaps); i++ {
				gap := calls[i].At.Sub(calls[i-1].At)
				if gap < c.want.minGaps[i-1] || gap > c.want.maxGaps[i-1] {
					t.Errorf("gap before call %d = %s, want within [%s, %s]", i+1, gap, c.want.minGaps[i-1], c.want.maxGaps[i-1])
				}
			}
			if e.Succeeded() {
				if !json.Valid([]byte(e.Result)) || !strings.Contains(e.Result, `"success":true`) {
					t.Errorf("result is not the upstream's JSON body: %.200s", e.Result)
				}
			} else if e.Result != "" || e.Error == "" {
				t.Errorf("a failed result has result=%q error=%q; want no result and a message", e.Result, e.Error)
			}
			if e.Worker == "" || e.FinishedAt.Before(e.EnqueuedAt) || e.Queue != "default" {
				t.Errorf("worker=%q queue=%q enqueued_at=%s finished_at=%s", e.Worker, e.Queue, e.EnqueuedAt, e.FinishedAt)
			}
		})
	}

	if e := ResultFor(all, ids["success"])[0]; e.Meta != `{"request_id":"r-1"}` || e.Subject != "ok-1" || e.TaskType != tasks.TypeHookedAccountRefresh || e.Provider != "hooked" {
		t.Errorf("success entry: meta=%s subject=%s type=%s provider=%s", e.Meta, e.Subject, e.TaskType, e.Provider)
	}
	if e := ResultFor(all, ids["bundle success"])[0]; e.Subject != "team-1/TIKTOK" || e.Meta != "{}" {
		t.Errorf("bundle entry: subject=%s meta=%s", e.Subject, e.Meta)
	}
	for _, key := range []string{"bundle-secret-key", "hooked-secret-key"} {
		if strings.Contains(w.Stderr.String(), key) {
			t.Errorf("worker log contains the API key %q", key)
		}
		for _, e := range all {
			if strings.Contains(e.Error, key) || strings.Contains(e.Result, key) {
				t.Errorf("result of %s contains the API key", e.TaskID)
			}
		}
	}
}

// TestForeignProducers checks tasks another service enqueued with asynq
// directly: a payload that fails validation and a type refreshq does not
// handle each end with one failed result, and the upstream is not called.
func TestForeignProducers(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	s.StartWorker(nil)
	c, insp := s.asynqClient()
	cases := []struct {
		typ, payload string
		kind         results.ErrorKind
		provider     string
	}{
		{tasks.TypeHookedAccountRefresh, `not json`, results.KindInvalidPayload, "hooked"},
		{tasks.TypeBundleSocialProfileRefresh, `{"team_id":"t1","platform":"MYSPACE"}`, results.KindInvalidPayload, "bundle_social"},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"a1","meta":"not an object"}`, results.KindInvalidPayload, "hooked"},
		{tasks.TypeHookedAccountRefresh, `{"account_id":"` + strings.Repeat("x", 70<<10) + `"}`, results.KindInvalidPayload, "hooked"},
		{"hooked:account_delete", `{"account_id":"a1"}`, results.KindUnknownTaskType, ""},
	}
	ids := make([]string, len(cases))
	for i, tc := range cases {
		// asynq's defaults, as a foreign producer would leave them.
		info, err := c.Enqueue(asynq.NewTask(tc.typ, []byte(tc.payload)))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = info.ID
	}
	s.WaitResults(len(cases), 30*time.Second)
	time.Sleep(time.Second)
	all := s.Results()
	if len(all) != len(cases) {
		t.Fatalf("%d entries, want %d", len(all), len(cases))
	}
	for i, tc := range cases {
		got := ResultFor(all, ids[i])
		if len(got) != 1 || got[0].ErrorKind != tc.kind || got[0].Status != results.StatusFailed || got[0].Provider != tc.provider || got[0].Attempts != 0 {
			t.Errorf("case %d (%s %.40s): got %+v, want one failed %s entry", i, tc.typ, tc.payload, got, tc.kind)
		}
	}
	if n := len(s.Sim.Calls()); n != 0 {
		t.Errorf("upstream was called %d times for invalid tasks", n)
	}
	// They end in the archive, where an operator sees them.
	archived, err := insp.ListArchivedTasks("default")
	if err != nil || len(archived) != len(cases) {
		t.Errorf("archived %d tasks (%v), want %d", len(archived), err, len(cases))
	}
}

// TestUnconfiguredProvider: a provider with no API key is not served; its
// tasks end with an auth result naming the variable to set.
func TestUnconfiguredProvider(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	s.StartWorker(map[string]string{"HOOKED_API_KEY": ""})
	id := s.MustEnqueue("hooked", "--account", "a1")
	e := ResultFor(s.WaitResults(1, 20*time.Second), id)
	if len(e) != 1 || e[0].ErrorKind != results.KindAuth || !strings.Contains(e[0].Error, "HOOKED_API_KEY") {
		t.Fatalf("got %+v, want one auth result naming HOOKED_API_KEY", e)
	}
	if len(s.Sim.Calls()) != 0 {
		t.Error("the upstream was called without a key")
	}
}

// TestEnqueueBadInput: every bad input exits 2 with a message that says
// what is wrong, and nothing is written to Redis.
func TestEnqueueBadInput(t *testing.T) {
	s := NewStack(t, simulator.Options{})
	cases := []struct {
		args    []string
		stdin   string
		message string
	}{
		{[]string{"bundle-social", "--team", "t1", "--platform", "MYSPACE"}, "", "platform"},
		{[]string{"bundle-social", "--platform", "TIKTOK"}, "", "team"},
		{[]string{"hooked"}, "", "account"},
		{[]string{"hooked", "--account", "a1", "--queue", "nope"}, "", "queue"},
		{[]string{"hooked", "--account", "a1", "--meta", "[1]"}, "", "meta"},
		{[]string{"hooked", "--account", "a1", "--in", "5s", "--at", "2030-01-01T00:00:00Z"}, "", "--at"},
		{[]string{"hooked", "--account", "a1", "--in", "soon"}, "", "soon"},
		{[]string{"frobnicate"}, "", "frobnicate"},
		{[]string{"file", "-"}, "{\"provider\":\"hooked\",\"account_id\":\"a1\"}\n{\"provider\":\"hooked\"}\nnot json\n{\"provider\":\"bundle_social\",\"team_id\":\"t\",\"platform\":\"X\"}\n", "line 2"},
	}
	for _, c := range cases {
		_, errs, code := s.Enqueue(nil, c.stdin, c.args...)
		if code != 2 || !strings.Contains(errs, c.message) {
			t.Errorf("enqueue %v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errs, c.message)
		}
	}
	_, errs, _ := s.Enqueue(nil, "{\"provider\":\"hooked\",\"account_id\":\"a1\"}\n{\"provider\":\"hooked\"}\nnot json\n{\"provider\":\"bundle_social\",\"team_id\":\"t\",\"platform\":\"X\"}\n", "file", "-")
	for _, line := range []string{"line 2", "line 3", "line 4"} {
		if !strings.Contains(errs, line) {
			t.Errorf("file errors do not report %s:\n%s", line, errs)
		}
	}
	if n := s.RDB.DBSize(context.Background()).Val(); n != 0 {
		keys := s.RDB.Keys(context.Background(), "*").Val()
		t.Errorf("bad input wrote %d keys to Redis: %v", n, keys)
	}
	_, errs, code := s.Enqueue(map[string]string{"REDIS_URL": ""}, "", "hooked", "--account", "a1")
	if code != 2 || !strings.Contains(errs, "REDIS_URL") {
		t.Errorf("no REDIS_URL: exit %d, %q", code, errs)
	}
}

// enqueue file --wait prints the task ids, then each task's result in
// line order, and exits 1 when one of them failed.
func TestEnqueueFileWait(t *testing.T) {
	s := NewStack(t, simulator.Options{Script: script})
	s.StartWorker(nil)

	in := "{\"provider\":\"hooked\",\"account_id\":\"ok-fw\"}\n{\"provider\":\"hooked\",\"account_id\":\"gone-fw\"}\n"
	out, errs, code := s.Enqueue(nil, in, "file", "-", "--wait", "60s")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 4 {
		t.Fatalf("file --wait: exit %d, stdout %q, stderr %q; want exit 1 and 2 ids then 2 results", code, out, errs)
	}
	for i, want := range []string{`"status":"succeeded"`, `"error_kind":"not_found"`} {
		if !strings.Contains(lines[2+i], `"task_id":"`+lines[i]+`"`) || !strings.Contains(lines[2+i], want) {
			t.Errorf("result line %d = %s, want task %s with %s", i+1, lines[2+i], lines[i], want)
		}
	}
	if !strings.Contains(errs, "1 of 2 tasks failed") {
		t.Errorf("stderr %q does not say how many failed", errs)
	}

	out, errs, code = s.Enqueue(nil, "{\"provider\":\"hooked\",\"account_id\":\"ok-fw2\"}\n", "file", "-", "--wait", "60s")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.Contains(lines[1], `"status":"succeeded"`) {
		t.Errorf("file --wait of a succeeding line: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
