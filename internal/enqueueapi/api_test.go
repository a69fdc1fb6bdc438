package enqueueapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

func TestMain(m *testing.M) {
	redisconn.SilenceDialErrors() // failed dials to 127.0.0.1:1 are the point
	goleak.VerifyTestMain(m)
}

const token = "s3cret-token"

type fixture struct {
	srv            *httptest.Server
	rdb            *redis.Client
	insp           *asynq.Inspector
	queue1, queue2 string
	stream         string
	space          *redistest.Space
}

// setup serves the API over a client on queues and a stream of the test's
// own, on the Redis at REDIS_URL (else miniredis), or at redisURL if given.
func setup(t *testing.T, redisURL string) *fixture {
	t.Helper()
	sp := redistest.NewSpace(t, 2)
	f := &fixture{space: sp, rdb: sp.RDB, insp: sp.Insp, queue1: sp.Queues[0], queue2: sp.Queues[1], stream: sp.Stream}
	qs := sp.Queues
	if redisURL == "" {
		redisURL = sp.URL
	}
	// A short cancel wait: no worker runs here to end a running task.
	c, err := client.New(redisURL, client.WithQueues(qs...), client.WithResultsStream(f.stream), client.WithCancelWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(New(c, token, nil))
	t.Cleanup(func() {
		f.srv.Close()
		c.Close()
	})
	return f
}

func (f *fixture) subject() string {
	return f.space.Subject()
}

func (f *fixture) do(t *testing.T, method, path, auth string, body []byte) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 && json.Unmarshal(b, &m) != nil {
		m = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, m, resp.Header
}

func (f *fixture) post(t *testing.T, body string) (int, map[string]any) {
	t.Helper()
	code, m, _ := f.do(t, "POST", "/v1/refreshes", "Bearer "+token, []byte(body))
	return code, m
}

// tasks counts the tasks on the test's queues.
func (f *fixture) tasks() int {
	n := 0
	for _, q := range []string{f.queue1, f.queue2} {
		if info, err := f.insp.GetQueueInfo(q); err == nil {
			n += info.Size
		}
	}
	return n
}

func TestAuth(t *testing.T) {
	f := setup(t, "")
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Basic " + token, token} {
		code, m, h := f.do(t, "POST", "/v1/refreshes", auth, []byte(`{"provider":"hooked","account_id":"a1","queue":"`+f.queue1+`"}`))
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || m["errors"] == nil {
			t.Errorf("Authorization %q: %d %v, want 401 with an error body", auth, code, m)
		}
		if code, _, _ := f.do(t, "GET", "/v1/refreshes/x", auth, nil); code != http.StatusUnauthorized {
			t.Errorf("GET with Authorization %q: %d, want 401", auth, code)
		}
	}
	if n := f.tasks(); n != 0 {
		t.Errorf("%d tasks enqueued without a valid token", n)
	}
	t.Run("empty token refuses all", func(t *testing.T) {
		h := New(nil, "", nil)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/refreshes/x", nil)
		req.Header.Set("Authorization", "Bearer ")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%d, want 401", rec.Code)
		}
	})
}

func TestAuthCountedAndLoggedWithoutToken(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs syncbuf.Buffer
	h := New(nil, token, slog.New(slog.NewJSONHandler(&logs, nil)), WithMetrics(reg))
	for _, auth := range []string{"", "Basic abc", "Bearer " + token + "x", "Bearer " + strings.Repeat("y", 5000)} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/refreshes", strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %.20q: %d, want 401", auth, rec.Code)
		}
	}
	want := map[string]float64{"missing": 1, "malformed": 1, "wrong": 2}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "refreshq_enqueue_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("refreshq_enqueue_auth_failures_total = %v, want %v", got, want)
	}
	out := logs.String()
	if strings.Count(out, "authentication failed") != 4 || strings.Contains(out, token) || strings.Contains(out, "abc") || strings.Contains(out, "yyyy") {
		t.Errorf("logs should name each failure without the token:\n%s", out)
	}
}

func TestEnqueue(t *testing.T) {
	f := setup(t, "")
	t.Run("one object", func(t *testing.T) {
		code, m := f.post(t, `{"provider":"bundle_social","team_id":"`+f.subject()+`","platform":"TIKTOK","queue":"`+f.queue1+`","meta":{"request_id":"r1"}}`)
		if code != http.StatusAccepted {
			t.Fatalf("%d %v", code, m)
		}
		ids := m["task_ids"].([]any)
		if len(ids) != 1 {
			t.Fatalf("task_ids = %v", ids)
		}
		info, err := f.insp.GetTaskInfo(f.queue1, ids[0].(string))
		if err != nil || !strings.Contains(string(info.Payload), `"request_id":"r1"`) {
			t.Fatalf("task %v: %+v, %v", ids[0], info, err)
		}
	})
	t.Run("array with duplicate and delay", func(t *testing.T) {
		a, b := f.subject(), f.subject()
		body := fmt.Sprintf(`[
			{"provider":"hooked","account_id":%q,"queue":%q,"unique":"1h"},
			{"provider":"hooked","account_id":%q,"queue":%q,"in":"1h"},
			{"provider":"hooked","account_id":%q,"queue":%q,"unique":"1h"}
		]`, a, f.queue1, b, f.queue2, a, f.queue2)
		code, m := f.post(t, body)
		if code != http.StatusAccepted {
			t.Fatalf("%d %v", code, m)
		}
		ids := m["task_ids"].([]any)
		if len(ids) != 3 || ids[0] == nil || ids[1] == nil || ids[2] != nil {
			t.Fatalf("task_ids = %v, want two ids and null for the duplicate", ids)
		}
		dups := m["duplicates"].([]any)
		if len(dups) != 1 || dups[0].(map[string]any)["existing_task_id"] != ids[0] || dups[0].(map[string]any)["index"] != 2.0 {
			t.Errorf("duplicates = %v", dups)
		}
		if info, err := f.insp.GetTaskInfo(f.queue2, ids[1].(string)); err != nil || info.State != asynq.TaskStateScheduled {
			t.Errorf("delayed task: %+v, %v", info, err)
		}
	})
}

func TestBadRequests(t *testing.T) {
	f := setup(t, "")
	q := f.queue1
	for _, tc := range []struct {
		name   string
		body   string
		code   int
		errors []string // "index/field" of each expected error, "-/-" for body-level
	}{
		{"empty body", ``, 400, []string{"-/-"}},
		{"not JSON", `{"provider":`, 400, []string{"-/-"}},
		{"empty array", `[]`, 400, []string{"-/-"}},
		{"a string", `"hooked"`, 400, []string{"-/-"}},
		{"field errors", `[
			{"provider":"hooked","account_id":"ok","queue":"` + q + `"},
			{"provider":"bundle_social","team_id":"t1","platform":"tiktok","queue":"` + q + `"},
			{"provider":"hooked","queue":"` + q + `"},
			{"provider":"hooked","account_id":"a","queue":"default"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","colour":"red"},
			{"provider":"hooked","account_id":7,"queue":"` + q + `"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","unique":"forever"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","in":"1m","at":"2030-01-01T00:00:00Z"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","at":"tomorrow"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","meta":"x"},
			{"provider":"myspace","queue":"` + q + `"},
			42
		]`, 400, []string{"1/platform", "2/account_id", "3/queue", "4/colour", "5/account_id", "6/unique", "7/at", "8/at", "9/meta", "10/provider", "11/-"}},
		{"keys match exactly", `[
			{"Provider":"hooked","account_id":"a","queue":"` + q + `"},
			{"provider":"hooked","Account_ID":"a","queue":"` + q + `"},
			{"provider":"hooked","account_id":"a","account_id":"b","queue":"` + q + `"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","meta":{"k":1,"k":2}},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","meta":{"a":[{"x":1,"x":1}]}}
		]`, 400, []string{"0/Provider", "1/Account_ID", "2/account_id", "3/meta.k", "4/meta.a.x"}},
		{"task_id and deadline", `[
			{"provider":"hooked","account_id":"a","queue":"` + q + `","task_id":"has space"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","task_id":"` + strings.Repeat("x", 129) + `"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","task_id":"same"},
			{"provider":"hooked","account_id":"b","queue":"` + q + `","task_id":"same"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","deadline":"soon"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","deadline":"2001-01-01T00:00:00Z"},
			{"provider":"hooked","account_id":"a","queue":"` + q + `","in":"2h","deadline":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}
		]`, 400, []string{"0/task_id", "1/task_id", "3/task_id", "4/deadline", "5/deadline", "6/deadline"}},
		{"trailing data", `{"provider":"hooked","account_id":"a","queue":"` + q + `"} {"provider":"hooked"}`, 400, []string{"-/-"}},
		{"junk bytes", "\x00\xff\xfe junk", 400, []string{"-/-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, m := f.post(t, tc.body)
			if code != tc.code {
				t.Fatalf("%d %v, want %d", code, m, tc.code)
			}
			errs, _ := m["errors"].([]any)
			var got []string
			for _, e := range errs {
				e := e.(map[string]any)
				if e["message"] == "" {
					t.Errorf("error without a message: %v", e)
				}
				idx, field := "-", "-"
				if i, ok := e["index"].(float64); ok {
					idx = fmt.Sprint(int(i))
				}
				if s, ok := e["field"].(string); ok && s != "" {
					field = s
				}
				got = append(got, idx+"/"+field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.errors) {
				t.Errorf("errors at %v, want %v; body %v", got, tc.errors, m)
			}
			if n := f.tasks(); n != 0 {
				t.Errorf("%d tasks enqueued; a 400 enqueues nothing", n)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := `[` + strings.Repeat(`{"provider":"hooked","account_id":"a","queue":"`+q+`","meta":{"pad":"`+strings.Repeat("x", 4000)+`"}},`, MaxBodyBytes/4000) + `{}]`
		code, m := f.post(t, big)
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d %v, want 413", code, m)
		}
	})
	t.Run("one refresh too large", func(t *testing.T) {
		// Just over the cap: the decoder holds it whole, then it is refused.
		fat := `{"provider":"hooked","account_id":"a","queue":"` + q + `","meta":{"pad":"` + strings.Repeat("x", MaxItemBytes) + `"}}`
		for _, body := range []string{fat, "[" + fat + "]"} {
			if code, m := f.post(t, body); code != http.StatusRequestEntityTooLarge {
				t.Errorf("%d %v, want 413", code, m)
			}
		}
	})
	t.Run("too many refreshes", func(t *testing.T) {
		many := `[` + strings.Repeat(`{"provider":"hooked","account_id":"a","queue":"`+q+`"},`, MaxItems) + `{"provider":"hooked","account_id":"a","queue":"` + q + `"}]`
		code, m := f.post(t, many)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(m), fmt.Sprint(MaxItems)) {
			t.Fatalf("%d %v, want 413 naming the cap", code, m)
		}
		if n := f.tasks(); n != 0 {
			t.Errorf("%d tasks enqueued; a 413 enqueues nothing", n)
		}
	})
	t.Run("errors listed are capped and counted", func(t *testing.T) {
		bad := `[` + strings.Repeat(`{"provider":"myspace"},`, 99) + `{"provider":"myspace"}]`
		code, m := f.post(t, bad)
		errs, _ := m["errors"].([]any)
		if code != http.StatusBadRequest || len(errs) != MaxListedErrors || m["error_count"] != 100.0 {
			t.Fatalf("%d: %d errors listed, error_count %v; want 400, %d listed, 100 counted", code, len(errs), m["error_count"], MaxListedErrors)
		}
		if first := errs[0].(map[string]any); first["index"] != 0.0 {
			t.Errorf("first error listed is %v, want index 0", first)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		if code, _, _ := f.do(t, "PUT", "/v1/refreshes/x", "Bearer "+token, nil); code != http.StatusMethodNotAllowed {
			t.Errorf("%d, want 405", code)
		}
	})
}

func TestRedisDown(t *testing.T) {
	f := setup(t, "redis://:pw@127.0.0.1:1")
	code, m := f.post(t, `{"provider":"hooked","account_id":"a1","queue":"`+f.queue1+`"}`)
	if code != http.StatusServiceUnavailable || m["errors"] == nil {
		t.Fatalf("%d %v, want 503", code, m)
	}
	if strings.Contains(fmt.Sprint(m), "pw") {
		t.Errorf("body shows the password: %v", m)
	}
	if code, _, _ := f.do(t, "GET", "/v1/refreshes/x", "Bearer "+token, nil); code != http.StatusServiceUnavailable {
		t.Errorf("GET: %d, want 503", code)
	}
}

func TestResult(t *testing.T) {
	f := setup(t, "")
	now := time.Now()
	e := results.Entry{TaskID: "task-1", TaskType: "hooked:account_refresh", Queue: f.queue1, Provider: "hooked", Subject: "a1", Status: results.StatusSucceeded, Attempts: 3, HTTPStatus: 200, Result: `{"ok":true}`, Meta: `{"r":"x"}`, EnqueuedAt: now.Add(-1500 * time.Millisecond), FinishedAt: now}
	if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(context.Background(), e, 1); err != nil {
		t.Fatal(err)
	}
	code, raw, h := f.raw(t, "GET", "/v1/refreshes/task-1", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", code, raw)
	}
	// Typed JSON: numbers as numbers, result and meta as objects.
	for _, want := range []string{`"v":1`, `"attempts":3`, `"http_status":200`, `"duration_ms":1500`, `"result":{"ok":true}`, `"meta":{"r":"x"}`, `"status":"succeeded"`, `"task_id":"task-1"`, `"error":""`} {
		if !strings.Contains(raw, want) {
			t.Errorf("body lacks %s: %s", want, raw)
		}
	}
	t.Run("failed result has null result and {} meta", func(t *testing.T) {
		e := results.Entry{TaskID: "task-2", Status: results.StatusFailed, ErrorKind: results.KindNotFound, Error: "gone", EnqueuedAt: now, FinishedAt: now}
		if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(context.Background(), e, 1); err != nil {
			t.Fatal(err)
		}
		code, raw, _ := f.raw(t, "GET", "/v1/refreshes/task-2", nil)
		if code != http.StatusOK || !strings.Contains(raw, `"result":null`) || !strings.Contains(raw, `"meta":{}`) {
			t.Errorf("%d %s", code, raw)
		}
	})
}

func TestResultState(t *testing.T) {
	f := setup(t, "")
	pending := f.enqueueOne(t, "")
	scheduled := f.enqueueOne(t, `,"in":"1h"`)
	retrying := f.enqueueOne(t, "")
	// asynq moves a task to retry only from a worker; the hash's state
	// field is what a retrying task looks like to a reader.
	if err := f.rdb.HSet(context.Background(), "asynq:{"+f.queue1+"}:t:"+retrying, "state", "retry").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, state string }{
		{pending, "pending"}, {scheduled, "scheduled"}, {retrying, "retry"}, {"never-enqueued", "unknown"},
	} {
		code, m, _ := f.do(t, "GET", "/v1/refreshes/"+tc.id, "Bearer "+token, nil)
		if code != http.StatusNotFound || m["state"] != tc.state || m["task_id"] != tc.id || m["errors"] == nil {
			t.Errorf("%s: %d %v, want 404 with state %s", tc.id, code, m, tc.state)
		}
	}
}

func TestWait(t *testing.T) {
	f := setup(t, "")
	id := f.enqueueOne(t, "")
	go func() {
		time.Sleep(300 * time.Millisecond)
		e := results.Entry{TaskID: id, Status: results.StatusSucceeded, Result: `{"ok":true}`, EnqueuedAt: time.Now(), FinishedAt: time.Now()}
		_, _, _ = results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(context.Background(), e, 1)
	}()
	start := time.Now()
	code, m, _ := f.do(t, "GET", "/v1/refreshes/"+id+"?wait=10s", "Bearer "+token, nil)
	if code != http.StatusOK || m["task_id"] != id || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %v after %s, want 200 with the result as soon as it lands", code, m, time.Since(start))
	}
	t.Run("times out with the state", func(t *testing.T) {
		id := f.enqueueOne(t, "")
		start := time.Now()
		code, m, _ := f.do(t, "GET", "/v1/refreshes/"+id+"?wait=1s", "Bearer "+token, nil)
		if took := time.Since(start); code != http.StatusNotFound || m["state"] != "pending" || took < time.Second || took > 5*time.Second {
			t.Fatalf("%d %v after %s, want 404 pending after 1s", code, m, took)
		}
	})
	t.Run("bad wait", func(t *testing.T) {
		for _, w := range []string{"61s", "forever", "-1s", "2m"} {
			if code, m, _ := f.do(t, "GET", "/v1/refreshes/x?wait="+w, "Bearer "+token, nil); code != http.StatusBadRequest {
				t.Errorf("wait=%s: %d %v, want 400", w, code, m)
			}
		}
	})
}

func TestTaskID(t *testing.T) {
	f := setup(t, "")
	ctx := context.Background()
	acct := f.subject()
	id := redistest.Name(t, "order-")
	t.Cleanup(func() { f.rdb.Del(ctx, f.stream+":taskid:"+id) })
	body := func(account, meta string) string {
		return fmt.Sprintf(`{"provider":"hooked","account_id":%q,"queue":%q,"task_id":%q,"deadline":%q,"meta":%s}`,
			account, f.queue1, id, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), meta)
	}
	code, m := f.post(t, body(acct, `{"a":1,"b":2}`))
	if code != http.StatusAccepted || fmt.Sprint(m["task_ids"]) != "["+id+"]" || m["existing"] != nil {
		t.Fatalf("first: %d %v, want 202 with the given id", code, m)
	}
	info, err := f.insp.GetTaskInfo(f.queue1, id)
	if err != nil || !strings.Contains(string(info.Payload), `"deadline":`) {
		t.Fatalf("task %s: %+v, %v; want its payload to carry the deadline", id, info, err)
	}
	t.Run("same refresh again is the same task", func(t *testing.T) {
		// Meta compares as JSON: key order and spacing do not matter.
		code, m := f.post(t, body(acct, `{ "b":2, "a":1 }`))
		ex, _ := m["existing"].([]any)
		if code != http.StatusAccepted || fmt.Sprint(m["task_ids"]) != "["+id+"]" || len(ex) != 1 {
			t.Fatalf("%d %v, want 202 naming the existing task", code, m)
		}
		if n := f.tasks(); n != 1 {
			t.Errorf("%d tasks, want 1", n)
		}
	})
	t.Run("a different refresh is a 409", func(t *testing.T) {
		code, m := f.post(t, body(f.subject(), `{"a":1,"b":2}`))
		errs, _ := m["errors"].([]any)
		if code != http.StatusConflict || len(errs) != 1 || errs[0].(map[string]any)["field"] != "task_id" {
			t.Fatalf("%d %v, want 409 on task_id", code, m)
		}
		if n := f.tasks(); n != 1 {
			t.Errorf("%d tasks, want 1", n)
		}
	})
	t.Run("still the same task once it ended", func(t *testing.T) {
		if err := f.insp.DeleteTask(f.queue1, id); err != nil {
			t.Fatal(err)
		}
		e := results.Entry{TaskID: id, Status: results.StatusSucceeded, EnqueuedAt: time.Now(), FinishedAt: time.Now()}
		if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(ctx, e, 1); err != nil {
			t.Fatal(err)
		}
		code, m := f.post(t, body(acct, `{"a":1,"b":2}`))
		if code != http.StatusAccepted || m["existing"] == nil || f.tasks() != 0 {
			t.Fatalf("%d %v (%d tasks), want the ended task and nothing enqueued", code, m, f.tasks())
		}
		if code, _ := f.post(t, body(f.subject(), `{}`)); code != http.StatusConflict {
			t.Errorf("different refresh: %d, want 409", code)
		}
	})
	t.Run("an id taken outside the API is a 409", func(t *testing.T) {
		other := redistest.Name(t, "foreign-")
		c, err := client.NewFromRedisClient(f.rdb, client.WithQueues(f.queue1, f.queue2), client.WithResultsStream(f.stream))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Enqueue(ctx, tasks.Hooked(acct), client.Queue(f.queue2), client.TaskID(other)); err != nil {
			t.Fatal(err)
		}
		code, m := f.post(t, fmt.Sprintf(`{"provider":"hooked","account_id":%q,"queue":%q,"task_id":%q}`, acct, f.queue1, other))
		if code != http.StatusConflict {
			t.Fatalf("%d %v, want 409", code, m)
		}
	})
}

// enqueueOne enqueues a hooked refresh on queue1 (with extra JSON fields)
// and returns its id.
func (f *fixture) enqueueOne(t *testing.T, extra string) string {
	t.Helper()
	code, m := f.post(t, `{"provider":"hooked","account_id":"`+f.subject()+`","queue":"`+f.queue1+`"`+extra+`}`)
	if code != http.StatusAccepted {
		t.Fatalf("enqueue: %d %v", code, m)
	}
	return m["task_ids"].([]any)[0].(string)
}

func (f *fixture) raw(t *testing.T, method, path string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}
