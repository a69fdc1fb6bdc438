package enqueueapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/results"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // failed dials to 127.0.0.1:1 are the point
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

const token = "s3cret-token"

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type fixture struct {
	srv            *httptest.Server
	rdb            *redis.Client
	insp           *asynq.Inspector
	queue1, queue2 string
	stream         string
	subjects       []string
}

// setup serves the API over a client on queues and a stream of the test's
// own, on the Redis at REDIS_URL (else miniredis), or at redisURL if given.
func setup(t *testing.T, redisURL string) *fixture {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://" + miniredis.RunT(t).Addr()
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rdb: redis.NewClient(opt), queue1: "t" + randHex(5), queue2: "t" + randHex(5), stream: "test:results:" + randHex(5)}
	f.insp = asynq.NewInspectorFromRedisClient(f.rdb)
	qs, err := config.ParseQueues(f.queue1 + "=2," + f.queue2 + "=1")
	if err != nil {
		t.Fatal(err)
	}
	if redisURL == "" {
		redisURL = url
	}
	c, err := client.New(redisURL, client.WithQueues(qs), client.WithResultsStream(f.stream))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(New(c, token, nil))
	t.Cleanup(func() {
		f.srv.Close()
		c.Close()
		ctx := context.Background()
		for _, q := range []string{f.queue1, f.queue2} {
			_ = f.insp.DeleteQueue(q, true)
			f.rdb.SRem(ctx, "asynq:queues", q)
		}
		keys, _ := f.rdb.Keys(ctx, f.stream+"*").Result()
		for _, s := range f.subjects {
			keys = append(keys, client.UniqueKey("hooked", s), client.UniqueKey("bundle_social", s+"/TIKTOK"))
		}
		if len(keys) > 0 {
			f.rdb.Del(ctx, keys...)
		}
		f.rdb.Close()
	})
	return f
}

func (f *fixture) subject() string {
	s := "acct-" + randHex(5)
	f.subjects = append(f.subjects, s)
	return s
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
		big := `[` + strings.Repeat(`{"provider":"hooked","account_id":"a","queue":"`+q+`"},`, MaxBodyBytes/40) + `{}]`
		code, m := f.post(t, big)
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("%d %v, want 413", code, m)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		if code, _, _ := f.do(t, "DELETE", "/v1/refreshes/x", "Bearer "+token, nil); code != http.StatusMethodNotAllowed {
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
	e := results.Entry{TaskID: "task-1", TaskType: "hooked:account_refresh", Queue: f.queue1, Provider: "hooked", Subject: "a1", Status: results.StatusSucceeded, Result: `{"ok":true}`, EnqueuedAt: now, FinishedAt: now}
	if _, _, err := results.NewPublisher(f.rdb, f.stream, time.Hour).Publish(context.Background(), e, 1); err != nil {
		t.Fatal(err)
	}
	code, m, h := f.do(t, "GET", "/v1/refreshes/task-1", "Bearer "+token, nil)
	if code != http.StatusOK || m["task_id"] != "task-1" || m["status"] != "succeeded" || m["result"] != `{"ok":true}` || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", code, m)
	}
	if code, m, _ := f.do(t, "GET", "/v1/refreshes/task-none", "Bearer "+token, nil); code != http.StatusNotFound || m["errors"] == nil {
		t.Fatalf("%d %v, want 404", code, m)
	}
}
