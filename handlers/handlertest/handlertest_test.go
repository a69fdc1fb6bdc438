package handlertest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/handlers/handlertest"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Bodies as the providers document them (bundle.social's OpenAPI schema,
// hooked.so's example response).
const (
	hookedOK = `{"success":true,"message":"Account refreshed successfully","data":{"account":` +
		`{"id":"clx123abc","username":"fitnessguru","platform":"tiktok","stats":{"followers":1520000}}}}`
	bundleOK = `{"success":true,"socialAccountId":"sa-1","socialAccount":{"id":"sa-1","type":"TIKTOK",` +
		`"teamId":"team-1","username":"fitnessguru","createdAt":"2024-01-01T00:00:00.000Z","updatedAt":"2024-01-16T10:30:00.000Z"},` +
		`"refreshedAt":"2024-01-16T10:30:00.000Z","limit":100,"used":1,"remaining":99,"windowSeconds":86400}`
	notFound    = `{"statusCode":404,"message":"Social account not found"}`
	tooMany     = `{"statusCode":429,"message":"Too many requests"}`
	serverError = `{"statusCode":500,"message":"Internal server error"}`
)

// reply is one upstream response.
type reply struct {
	status     int
	retryAfter string
	body       string
}

// upstream answers both providers under a base path that is not "/",
// with replies in turn (the last one repeating), and counts requests.
// Its API key is the test's own: a key's budget and cooldowns live in
// Redis, shared by every test that uses the same Redis and key.
type upstream struct {
	*httptest.Server
	key     string
	mu      sync.Mutex
	replies []reply
	paths   []string
}

func newUpstream(t *testing.T, replies ...reply) *upstream {
	u := &upstream{key: redistest.Name(t, "key"), replies: replies}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.paths = append(u.paths, r.Method+" "+r.URL.Path)
		rp := u.replies[min(len(u.paths), len(u.replies))-1]
		u.mu.Unlock()
		if r.Header.Get("x-api-key") != u.key {
			http.Error(w, `{"statusCode":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if rp.retryAfter != "" {
			w.Header().Set("Retry-After", rp.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rp.status)
		_, _ = w.Write([]byte(rp.body))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...)
}

// want is what a user sees after one run: the task's asynq state, whether
// the handler ended the task, and its result once there is one.
type want struct {
	state asynq.TaskState
	ended bool // the handler returned asynq.SkipRetry: never retried
	// retryIn is the least wait before the retry, for a task in retry.
	retryIn time.Duration
	// result is the published status and error kind, "" for none yet.
	status   results.Status
	kind     results.ErrorKind
	http     int
	attempts int
}

// TestWorkThroughAsynq works one refresh per upstream answer through a
// real asynq server, re-running a task in retry without waiting for it.
func TestWorkThroughAsynq(t *testing.T) {
	hookedPath := "POST /hooked/v1/social/account/clx123abc/refresh"
	bundlePath := "POST /bundle/api/v1/social-account/profile-refresh"
	for _, tc := range []struct {
		name    string
		ref     tasks.Refresh
		replies []reply
		runs    []want
		paths   []string
	}{
		{
			name:    "200 completes with a succeeded result",
			ref:     tasks.Hooked("clx123abc"),
			replies: []reply{{status: 200, body: hookedOK}},
			runs:    []want{{state: asynq.TaskStateCompleted, status: results.StatusSucceeded, http: 200, attempts: 1}},
			paths:   []string{hookedPath},
		},
		{
			name:    "bundle.social 200 completes with a succeeded result",
			ref:     tasks.BundleSocial("team-1", "TIKTOK"),
			replies: []reply{{status: 200, body: bundleOK}},
			runs:    []want{{state: asynq.TaskStateCompleted, status: results.StatusSucceeded, http: 200, attempts: 1}},
			paths:   []string{bundlePath},
		},
		{
			name:    "404 is archived with not_found and never retried",
			ref:     tasks.Hooked("clx123abc"),
			replies: []reply{{status: 404, body: notFound}},
			runs: []want{{state: asynq.TaskStateArchived, ended: true,
				status: results.StatusFailed, kind: results.KindNotFound, http: 404, attempts: 1}},
			paths: []string{hookedPath},
		},
		{
			name:    "429 with Retry-After waits in retry, then succeeds",
			ref:     tasks.Hooked("clx123abc"),
			replies: []reply{{status: 429, retryAfter: "1", body: tooMany}, {status: 200, body: hookedOK}},
			runs: []want{
				{state: asynq.TaskStateRetry, retryIn: time.Second},
				{state: asynq.TaskStateCompleted, status: results.StatusSucceeded, http: 200, attempts: 2},
			},
			paths: []string{hookedPath, hookedPath},
		},
		{
			// Again skips asynq's delay, not the fleet's: the key cools
			// down for 2s, longer than a handler sleeps, so the run ahead
			// of it hands the task back without a request.
			name:    "429 with a longer Retry-After keeps the key cooling down",
			ref:     tasks.Hooked("clx123abc"),
			replies: []reply{{status: 429, retryAfter: "2", body: tooMany}, {status: 200, body: hookedOK}},
			runs: []want{
				{state: asynq.TaskStateRetry, retryIn: 2 * time.Second},
				{state: asynq.TaskStateRetry, retryIn: time.Second},
			},
			paths: []string{hookedPath},
		},
		{
			name:    "500 waits in retry for the backoff, then fails once retries are spent",
			ref:     tasks.BundleSocial("team-1", "TIKTOK"),
			replies: []reply{{status: 500, body: serverError}},
			runs: []want{
				{state: asynq.TaskStateRetry, retryIn: time.Minute},
				{state: asynq.TaskStateArchived, ended: true,
					status: results.StatusFailed, kind: results.KindServer, http: 500, attempts: 2},
			},
			paths: []string{bundlePath, bundlePath},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, tc.replies...)
			rdb, _ := redistest.Client(t)
			h := handlertest.New(t, handlers.Config{
				Redis: rdb,
				Providers: map[string]handlers.Provider{
					tasks.ProviderHooked:       {APIKey: up.key, BaseURL: up.URL + "/hooked"},
					tasks.ProviderBundleSocial: {APIKey: up.key, BaseURL: up.URL + "/bundle", Rate: "off"},
				},
				MaxRetries:   1,
				RetryInitial: time.Minute,
				RetryMax:     time.Minute,
			})
			ctx := context.Background()

			start := time.Now()
			runs := h.WorkUntilDone(ctx, tc.ref, len(tc.runs))
			if len(runs) != len(tc.runs) {
				t.Fatalf("%d runs, want %d: %+v", len(runs), len(tc.runs), runs)
			}
			for i, w := range tc.runs {
				check(t, i+1, runs[i], w, start)
				start = time.Now()
			}
			if got := up.requests(); strings.Join(got, "\n") != strings.Join(tc.paths, "\n") {
				t.Errorf("upstream requests %q, want %q", got, tc.paths)
			}
			// At most one result, whatever the number of runs.
			wantEntries := int64(0)
			if tc.runs[len(tc.runs)-1].status != "" {
				wantEntries = 1
			}
			if n, err := rdb.XLen(ctx, h.ResultsStream()).Result(); err != nil || n != wantEntries {
				t.Errorf("results stream holds %d entries (%v), want %d", n, err, wantEntries)
			}
		})
	}
}

func check(t *testing.T, n int, got handlertest.Run, w want, start time.Time) {
	t.Helper()
	if got.Task == nil || got.Task.State != w.state {
		t.Fatalf("run %d: task %+v, want state %s (handler returned %v)", n, got.Task, w.state, got.Err)
	}
	if ended := errors.Is(got.Err, asynq.SkipRetry); ended != w.ended || (w.state == asynq.TaskStateCompleted) != (got.Err == nil) {
		t.Errorf("run %d: handler returned %v, want SkipRetry %v", n, got.Err, w.ended)
	}
	if w.state == asynq.TaskStateRetry {
		// asynq runs a retry on a whole second.
		if wait := got.Task.NextProcessAt.Sub(start); wait < w.retryIn || wait > w.retryIn+2*time.Second {
			t.Errorf("run %d: retry in %s, want %s up to 2s more", n, wait, w.retryIn)
		}
	}
	if w.status == "" {
		if got.Result != nil {
			t.Errorf("run %d: result %+v, want none yet", n, got.Result)
		}
		return
	}
	e := got.Result
	if e == nil {
		t.Fatalf("run %d: no result, want %s", n, w.status)
	}
	if e.TaskID != got.TaskID || e.Status != w.status || e.ErrorKind != w.kind || e.HTTPStatus != w.http || e.Attempts != w.attempts {
		t.Errorf("run %d: result %s %s %q http %d attempts %d, want %s %s %q http %d attempts %d", n,
			e.TaskID, e.Status, e.ErrorKind, e.HTTPStatus, e.Attempts, got.TaskID, w.status, w.kind, w.http, w.attempts)
	}
	if w.status == results.StatusSucceeded && e.Result == "" {
		t.Errorf("run %d: succeeded result carries no upstream body", n)
	}
}

// TestWorkTaskOfAnotherService: a payload no refresh can be made of ends
// at once, with the result that says why, and no upstream request.
func TestWorkTaskOfAnotherService(t *testing.T) {
	up := newUpstream(t, reply{status: 200, body: hookedOK})
	rdb, _ := redistest.Client(t)
	h := handlertest.New(t, handlers.Config{Redis: rdb, Providers: map[string]handlers.Provider{
		tasks.ProviderHooked: {APIKey: up.key, BaseURL: up.URL + "/hooked"},
	}})
	run := h.WorkTask(context.Background(), asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(`{"account":"clx123abc"}`)))
	if run.Task == nil || run.Task.State != asynq.TaskStateArchived || !errors.Is(run.Err, asynq.SkipRetry) {
		t.Fatalf("task %+v, handler returned %v; want archived with SkipRetry", run.Task, run.Err)
	}
	if run.Result == nil || run.Result.ErrorKind != results.KindInvalidPayload {
		t.Fatalf("result %+v, want invalid_payload", run.Result)
	}
	if got := up.requests(); len(got) != 0 {
		t.Errorf("upstream requests %q, want none", got)
	}
}
