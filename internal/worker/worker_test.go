package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/probe"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/internal/worker"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

type bundle struct {
	rdb           redis.UniversalClient
	url           string
	queue, stream string
	client        *asynq.Client
	insp          *asynq.Inspector
	reader        *results.Reader
	sim           *simulator.Simulator
	http          string
	logs          *syncbuf.Buffer
	stop          func() error
}

// setup runs a worker in this process on a queue and stream of the test's
// own, against the simulator. env["REDIS_URL"] shares another bundle's
// Redis (with miniredis each bundle otherwise gets its own); before runs
// against that Redis before the worker starts.
func setup(t *testing.T, simOpts simulator.Options, env map[string]string, before ...func(redis.UniversalClient)) *bundle {
	t.Helper()
	var rdb redis.UniversalClient
	url := env["REDIS_URL"]
	if url == "" {
		rdb, url = redistest.Client(t)
	} else {
		rdb = redistest.Connect(t, url)
	}
	for _, f := range before {
		f(rdb)
	}
	b := &bundle{rdb: rdb, url: url, queue: redistest.Name(t, "q_"), stream: redistest.Name(t, "results_"), logs: &syncbuf.Buffer{}}
	simOpts.Prefix = "/api"
	b.sim = simulator.New(simOpts)
	up := httptest.NewServer(b.sim)
	t.Cleanup(func() { b.sim.Close(); up.Close() })

	vars := map[string]string{
		"REDIS_URL": url, "QUEUES": b.queue + "=1", "RESULTS_STREAM": b.stream,
		"HOOKED_API_KEY": "hooked-key-shh", "HOOKED_BASE_URL": up.URL + "/api",
		"BUNDLE_SOCIAL_API_KEY": "bundle-key-shh", "BUNDLE_SOCIAL_BASE_URL": up.URL + "/api",
		"BUNDLE_SOCIAL_RATE": "off", "LOG_LEVEL": "debug", "SHUTDOWN_GRACE": "2s",
	}
	for k, v := range env {
		vars[k] = v
	}
	r := runWorker(t, vars, b.logs)
	b.stop = r.stop
	select {
	case b.http = <-r.started:
	case err := <-r.done:
		t.Fatalf("worker.Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not start")
	}
	opt, _ := asynq.ParseRedisURI(url)
	b.client = asynq.NewClient(opt)
	b.insp = asynq.NewInspector(opt)
	b.reader = results.NewReader(rdb, b.stream)
	t.Cleanup(func() {
		b.stop()
		b.reader.Close()
		b.insp.DeleteQueue(b.queue, true)
		b.client.Close()
		b.insp.Close()
		// The stream and its per-task index records; the name is the
		// test's own, so nothing another test uses is touched.
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, b.stream+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return b
}

// running is a worker.Run in this process.
type running struct {
	addr    string      // of its listener
	started chan string // the address Run reports once it serves
	done    chan error  // what Run returned
	stop    func() error
}

// runWorker runs a worker in this process with the environment vars,
// logging JSON at debug level to logs. stop ends it and returns what Run
// returned; the test's end stops it too.
func runWorker(t *testing.T, vars map[string]string, logs io.Writer) *running {
	t.Helper()
	cfg, err := config.LoadWorker(nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{addr: ln.Addr().String(), started: make(chan string, 1), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.done <- worker.Run(ctx, cfg, worker.Options{
			Logger: worker.NewLogger(logs, "json", "debug"), Listener: ln,
			Started: func(a string) { r.started <- a },
		})
	}()
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-r.done })
		return stopErr
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func (b *bundle) enqueue(t *testing.T, account string) string {
	t.Helper()
	task, err := tasks.NewTask(tasks.Hooked(account), asynq.Queue(b.queue))
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.client.Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func (b *bundle) wait(t *testing.T, id string) results.Entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := b.reader.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for result of %s: %v", id, err)
	}
	return e
}

func (b *bundle) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + b.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return buf.String()
}

// An operator's re-run of an archived task (the UI's "run") ends it again
// with one more entry; a redelivery would not.
func TestOperatorRerunAddsOneEntry(t *testing.T) {
	gone := true
	var mu sync.Mutex
	b := setup(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			return &simulator.Reply{Status: 404}
		}
		return nil
	}}, nil)
	id := b.enqueue(t, "acc-rerun")
	if e := b.wait(t, id); e.ErrorKind != results.KindNotFound {
		t.Fatalf("first run: %+v", e)
	}
	// The account exists now; the operator re-runs the archived task.
	mu.Lock()
	gone = false
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := b.insp.RunTask(b.queue, id); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("run archived task: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		e, err := b.reader.Lookup(ctx, id)
		if err == nil && e.Succeeded() {
			if e.Attempts != 2 {
				t.Errorf("attempts = %d, want 2 (all runs together)", e.Attempts)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the re-run did not publish a second result")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	all, _ := b.insp.ListArchivedTasks(b.queue)
	if len(all) != 0 {
		t.Errorf("%d tasks still archived after a successful re-run", len(all))
	}
}

// The metrics a dashboard reads count real work, and logs about a task
// carry its id, type, queue and attempt but never an API key.
func TestMetricsAndLogsAfterRealWork(t *testing.T) {
	b := setup(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		if strings.HasPrefix(c.Subject, "gone") {
			return &simulator.Reply{Status: 404}
		}
		return nil
	}}, nil)
	ok1, ok2, gone := b.enqueue(t, "acc-1"), b.enqueue(t, "acc-2"), b.enqueue(t, "gone-1")
	for _, id := range []string{ok1, ok2, gone} {
		b.wait(t, id)
	}
	// A result lands in the stream a moment before the worker counts it.
	var m string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m = b.metrics(t); strings.Contains(m, `error_kind="not_found"`) {
			break
		}
	}
	for _, want := range []string{
		`refreshq_tasks_total{error_kind="",queue="` + b.queue + `",status="succeeded",type="hooked:account_refresh"} 2`,
		`refreshq_tasks_total{error_kind="not_found",queue="` + b.queue + `",status="failed",type="hooked:account_refresh"} 1`,
		`refreshq_upstream_requests_total{code="200",provider="hooked"} 2`,
		`refreshq_upstream_requests_total{code="404",provider="hooked"} 1`,
		`refreshq_upstream_request_duration_seconds_count{provider="hooked"} 3`,
		`refreshq_task_duration_seconds_count{queue="` + b.queue + `",status="succeeded",type="hooked:account_refresh"} 2`,
		`refreshq_queue_tasks{queue="` + b.queue + `",state="archived"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	logs := b.logs.String()
	if strings.Contains(logs, "hooked-key-shh") || strings.Contains(logs, "bundle-key-shh") {
		t.Error("logs contain an API key")
	}
	found := false
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"result published"`) && strings.Contains(line, `"task_id":"`+ok1+`"`) {
			found = strings.Contains(line, `"type":"hooked:account_refresh"`) && strings.Contains(line, `"queue":"`+b.queue+`"`) && strings.Contains(line, `"attempt":1`)
		}
	}
	if !found {
		t.Errorf("no 'result published' log line for %s with type, queue and attempt:\n%s", ok1, logs)
	}
}

// Stopping a worker drains it: /readyz turns 503, and Run returns nil.
func TestShutdownDrains(t *testing.T) {
	b := setup(t, simulator.Options{Latency: 500 * time.Millisecond}, nil)
	id := b.enqueue(t, "acc-slow")
	time.Sleep(200 * time.Millisecond) // let it start
	resp, err := http.Get("http://" + b.http + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz before stop: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := b.stop(); err != nil {
		t.Fatalf("Run returned %v after a clean stop, want nil", err)
	}
	// The in-flight task finished within the grace period.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e, err := b.reader.Lookup(ctx, id); err != nil || !e.Succeeded() {
		t.Errorf("in-flight task after drain: %+v, %v", e, err)
	}
}

// With ENQUEUE_TOKEN set, the worker serves the HTTP enqueue API: a
// refresh posted as JSON runs, and its result is served by task id.
func TestEnqueueAPIOnTheWorker(t *testing.T) {
	b := setup(t, simulator.Options{}, map[string]string{"ENQUEUE_TOKEN": "tok-123"})
	post := func(token, body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", "http://"+b.http+"/v1/refreshes", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.String()
	}
	if resp, _ := post("wrong", `{"provider":"hooked","account_id":"a1","queue":"`+b.queue+`"}`); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d, want 401", resp.StatusCode)
	}
	resp, body := post("tok-123", `{"provider":"hooked","account_id":"api-1","queue":"`+b.queue+`"}`)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	var got struct {
		TaskIDs []string `json:"task_ids"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.TaskIDs) != 1 {
		t.Fatalf("POST body %s: %v", body, err)
	}
	e := b.wait(t, got.TaskIDs[0])
	if !e.Succeeded() || e.Subject != "api-1" {
		t.Fatalf("result %+v", e)
	}
	req, _ := http.NewRequest("GET", "http://"+b.http+"/v1/refreshes/"+got.TaskIDs[0], nil)
	req.Header.Set("Authorization", "Bearer tok-123")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(r2.Body).Decode(&m); err != nil || r2.StatusCode != 200 || m["status"] != "succeeded" || m["attempts"] != 1.0 {
		t.Fatalf("GET result: %d %v %v", r2.StatusCode, m, err)
	}
}

// The worker trims results older than RESULTS_MAX_AGE, but not one a
// consumer group has not been delivered and acknowledged while
// RESULTS_MAX_UNACKED_AGE (off here; the 1970 entries are past any) keeps it.
func TestWorkerTrimsResultsKeepingUnreadOnes(t *testing.T) {
	ctx := context.Background()
	stream := redistest.Name(t, "results_")
	prefill := func(rdb redis.UniversalClient) {
		// 20 entries from 1970 (ids are milliseconds), past any max age.
		for i := range 20 {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-0", 1000+i), Values: []string{"task_id", fmt.Sprint(i)}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// A consumer group has read and acknowledged the first 10 only.
		rdb.XGroupCreate(ctx, stream, "billing", "0")
		got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "c1", Streams: []string{stream, ">"}, Count: 10}).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got[0].Messages {
			rdb.XAck(ctx, stream, "billing", m.ID)
		}
	}
	b := setup(t, simulator.Options{}, map[string]string{"RESULTS_STREAM": stream, "RESULTS_MAX_AGE": "1h", "RESULTS_MAX_UNACKED_AGE": "off"}, prefill)
	rdb := b.rdb
	t.Cleanup(func() { rdb.Del(ctx, stream) })
	deadline := time.Now().Add(10 * time.Second)
	for rdb.XLen(ctx, stream).Val() != 10 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	left, _ := rdb.XRange(ctx, stream, "-", "+").Result()
	if len(left) != 10 || left[0].ID != "1010-0" {
		t.Fatalf("after trimming, %d entries starting at %v; want the 10 the group has not read, from 1010-0", len(left), left)
	}
}

// Two workers reading the same schedule file enqueue its entry once for
// the current period, and the refresh it makes ends with one result.
func TestScheduleOncePerPeriodAcrossWorkers(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/schedule.yaml"
	b := setup(t, simulator.Options{}, nil)
	entry := "- provider: hooked\n  account_id: sched-acc\n  every: 1h\n  queue: " + b.queue + "\n"
	if err := os.WriteFile(path, []byte(entry), 0o600); err != nil {
		t.Fatal(err)
	}
	// setup's worker has no schedule; two more that share its queue do.
	for range 2 {
		setup(t, simulator.Options{}, map[string]string{"REDIS_URL": b.url, "SCHEDULE_FILE": path, "QUEUES": b.queue + "=1", "RESULTS_STREAM": b.stream})
	}
	rdb := b.rdb
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for rdb.XLen(ctx, b.stream).Val() < 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a second enqueue of the period would show by now
	msgs, _ := rdb.XRange(ctx, b.stream, "-", "+").Result()
	if len(msgs) != 1 {
		t.Fatalf("%d results for one scheduled period, want 1: %v", len(msgs), msgs)
	}
	e := results.FromValues(msgs[0].ID, msgs[0].Values)
	if e.Subject != "sched-acc" || !e.Succeeded() || !strings.HasPrefix(e.TaskID, "sched:") {
		t.Errorf("scheduled result %+v", e)
	}
}

// Short backoffs are waited out in the handler, never sooner than the
// curve: RETRY_INITIAL=200ms gives gaps of 200–300 ms, then 400–600 ms,
// rather than asynq's whole seconds.
func TestShortBackoffNeverEarly(t *testing.T) {
	b := setup(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		if c.N <= 2 {
			return &simulator.Reply{Status: 503}
		}
		return nil
	}}, map[string]string{"RETRY_INITIAL": "200ms"})
	id := b.enqueue(t, "flaky-short")
	if e := b.wait(t, id); !e.Succeeded() || e.Attempts != 3 {
		t.Fatalf("result %+v, want success after 3 attempts", e)
	}
	calls := b.sim.CallsFor("flaky-short")
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for i, lo := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
		gap := calls[i+1].At.Sub(calls[i].At)
		if gap < lo || gap > lo*3/2+700*time.Millisecond {
			t.Errorf("gap %d = %s, want at least %s and well under asynq's whole-second rounding", i+1, gap, lo)
		}
	}
}

// A worker started against an unreachable Redis says so in one line,
// reports not ready, and says so again in one line when Redis answers: no
// stream of asynq or go-redis errors in between.
func TestRedisUnreachableAtStart(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Kill()
	vars := map[string]string{"REDIS_URL": srv.URL(), "QUEUES": redistest.Name(t, "q_") + "=1", "SHUTDOWN_GRACE": "1s"}
	logs := &syncbuf.Buffer{}
	r := runWorker(t, vars, logs)
	defer r.stop()
	readyz := func() int {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		if !poll.Holds(d, ok) {
			t.Fatalf("no %s within %s; logs:\n%s", what, d, logs.String())
		}
	}
	waitFor("'unreachable' line", 10*time.Second, func() bool { return strings.Contains(logs.String(), "unreachable") })
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while Redis is unreachable, want 503", code)
	}
	time.Sleep(4 * time.Second) // long enough for asynq's loops to complain, were they heard
	srv.Start(t)
	waitFor("'answers' line", 10*time.Second, func() bool { return strings.Contains(logs.String(), " answers") })
	waitFor("ready", 10*time.Second, func() bool { return readyz() == http.StatusOK })

	want := "Redis at " + srv.Addr() + " unreachable: dial tcp " + srv.Addr()
	var unreachable int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Level, Msg, Component string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		switch {
		case strings.HasPrefix(rec.Msg, want):
			unreachable++
			if !strings.Contains(rec.Msg, "retrying every") {
				t.Errorf("the line does not say when it retries: %q", rec.Msg)
			}
		case rec.Level == "WARN" && strings.HasPrefix(rec.Msg, "provider not configured"):
		case rec.Level == "WARN" || rec.Level == "ERROR":
			t.Errorf("unexpected %s line while Redis was away: %s", rec.Level, line)
		}
	}
	if unreachable != 1 {
		t.Errorf("%d 'unreachable' lines, want 1:\n%s", unreachable, logs.String())
	}
}

// TestHTTPServerHasLimits: the worker serves HTTP_ADDR with opshttp's
// limits and guards, not a bare http.Server: oversized headers get 431,
// and the credential-less UI refuses a foreign Host (DNS rebinding).
func TestHTTPServerHasLimits(t *testing.T) {
	b := setup(t, simulator.Options{}, nil)
	send := func(host string, header map[string]string) int {
		return probe.Request(t, "GET", "http://"+b.http+"/monitoring/", host, header)
	}
	if code := send("", nil); code != 200 {
		t.Errorf("the UI from this machine = %d, want 200", code)
	}
	if code := send("", map[string]string{"X-Junk": strings.Repeat("a", 200<<10)}); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("200 KiB of headers = %d, want 431", code)
	}
	if code := send("rebind.evil.example", nil); code != http.StatusMisdirectedRequest {
		t.Errorf("foreign Host = %d, want 421", code)
	}
}

// The web UI's delete of a waiting task and its cancel of a running one
// end the task with exactly one cancelled result naming the UI, and the
// UI's answer does not wait for the running task; a task that has ended
// is a 409 and an unknown one a 404.
func TestUICancelsEndTasksCancelledByUI(t *testing.T) {
	release := make(chan struct{})
	b := setup(t, simulator.Options{Script: func(simulator.Call) *simulator.Reply {
		<-release // the running task stays running until it is cancelled
		return nil
	}}, map[string]string{"MONITOR_USER": "ops", "MONITOR_PASSWORD": "ui-test-pw"})
	t.Cleanup(func() { close(release) })
	send := func(method, path string) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+b.http+"/monitoring/api/queues/"+b.queue+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("ops", "ui-test-pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	onlyCancelledByUI := func(id string) {
		t.Helper()
		e := b.wait(t, id)
		if e.ErrorKind != results.KindCancelled || e.Status != results.StatusFailed || !strings.Contains(e.Error, "cancelled by UI") {
			t.Errorf("task %s ended %s/%s %q, want failed/cancelled by UI", id, e.Status, e.ErrorKind, e.Error)
		}
		msgs, err := b.rdb.XRange(context.Background(), b.stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range msgs {
			if results.FromValues(m.ID, m.Values).TaskID == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("task %s has %d results, want exactly 1", id, n)
		}
	}

	task, err := tasks.NewTask(tasks.Hooked("ui-waiting"), asynq.Queue(b.queue), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.client.Enqueue(task)
	if err != nil {
		t.Fatal(err)
	}
	if code := send("DELETE", "/scheduled_tasks/"+info.ID); code != http.StatusNoContent {
		t.Fatalf("delete a waiting task = %d, want 204", code)
	}
	onlyCancelledByUI(info.ID)
	if code := send("DELETE", "/scheduled_tasks/"+info.ID); code != http.StatusConflict {
		t.Errorf("delete an ended task = %d, want 409", code)
	}
	if code := send("DELETE", "/pending_tasks/no-such-task"); code != http.StatusNotFound {
		t.Errorf("delete an unknown task = %d, want 404", code)
	}

	running := b.enqueue(t, "ui-running")
	poll.Until(t, 10*time.Second, "the task runs", func() bool {
		ti, err := b.insp.GetTaskInfo(b.queue, running)
		return err == nil && ti.State == asynq.TaskStateActive
	})
	start := time.Now()
	if code := send("POST", "/active_tasks/"+running+":cancel"); code != http.StatusNoContent {
		t.Fatalf("cancel a running task = %d, want 204", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the UI's cancel waited %s for the running task", d)
	}
	onlyCancelledByUI(running)
}
