package opshttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/redistest"
)

func TestMain(m *testing.M) {
	// httptest servers, asynqmon's Redis pools and Chromium's websocket all
	// run goroutines that must end with their test.
	goleak.VerifyTestMain(m)
}

// newServer builds a Server and closes it when the test ends.
func newServer(t *testing.T, opt opshttp.Options) *opshttp.Server {
	t.Helper()
	s, err := opshttp.New(opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type response struct {
	code   int
	body   string
	header http.Header
}

// do sends a request as a browser on this machine would: to a loopback
// Host, without Origin or Sec-Fetch-Site.
func do(h http.Handler, method, path, user, pass string) response {
	req := httptest.NewRequest(method, path, nil)
	req.Host = "127.0.0.1:8080"
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Body.String(), rec.Result().Header}
}

var fakeUpstreams = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "upstreams page\n")
})

var fakeMetrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	io.WriteString(w, "refreshq_tasks_total 0\n")
})

func TestAccessMatrix(t *testing.T) {
	ropt := redistest.ConnOpt(t)
	type req struct {
		method, path, user, pass string
		wantCode                 int
		wantBody                 string // substring
	}
	tests := []struct {
		name       string
		addr       string
		user, pass string
		pprof      bool
		reqs       []req
	}{
		{
			name: "loopback without credentials: UI readable but read-only",
			addr: "127.0.0.1:8080",
			reqs: []req{
				{"GET", "/monitoring/", "", "", 200, `FLAG_READ_ONLY="true"`},
				{"GET", "/monitoring/queues", "", "", 200, "Asynq - Monitoring"},
				{"GET", "/monitoring/api/queues", "", "", 200, `"queues"`},
				{"POST", "/monitoring/api/queues/refreshq-test-never-created:pause", "", "", 405, "read-only"},
				{"GET", "/metrics", "", "", 200, "refreshq_tasks_total"},
				{"GET", "/healthz", "", "", 200, "ok"},
				{"GET", "/upstreams/", "", "", 200, "upstreams page"},
				{"GET", "/upstreams", "", "", 307, "/upstreams/"},
				{"GET", "/monitoring/queues", "", "", 200, `href="/upstreams/"`},
				{"POST", "/upstreams/", "", "", 405, ""},
			},
		},
		{
			name: "localhost and ::1 count as loopback",
			addr: "localhost:8080",
			reqs: []req{{"GET", "/monitoring/", "", "", 200, `FLAG_READ_ONLY="true"`}},
		},
		{
			name: "IPv6 loopback",
			addr: "[::1]:8080",
			reqs: []req{{"GET", "/monitoring/", "", "", 200, `FLAG_READ_ONLY="true"`}},
		},
		{
			name: "all interfaces without credentials: no UI, metrics and health still served",
			addr: ":8080",
			reqs: []req{
				{"GET", "/monitoring/", "", "", 404, "MONITOR_USER and MONITOR_PASSWORD"},
				{"GET", "/monitoring/api/queues", "", "", 404, ""},
				{"POST", "/monitoring/api/queues/refreshq-test-never-created:pause", "", "", 404, ""},
				{"GET", "/upstreams/", "", "", 404, "MONITOR_USER and MONITOR_PASSWORD"},
				{"GET", "/metrics", "", "", 200, "refreshq_tasks_total"},
				{"GET", "/healthz", "", "", 200, "ok"},
				{"GET", "/readyz", "", "", 200, "ready"},
			},
		},
		{
			name: "public IP without credentials: no UI",
			addr: "10.1.2.3:8080",
			reqs: []req{{"GET", "/monitoring/", "", "", 404, ""}},
		},
		{
			name: "credentials set on a public address: 401 unless they match, full UI when they do",
			addr: "0.0.0.0:8080",
			user: "ops", pass: "s3cret-pw",
			reqs: []req{
				{"GET", "/monitoring/", "", "", 401, "401 unauthorized"},
				{"GET", "/monitoring/", "ops", "wrong", 401, ""},
				{"GET", "/monitoring/", "admin", "s3cret-pw", 401, ""},
				{"GET", "/monitoring/api/queues", "", "", 401, ""},
				{"GET", "/monitoring/", "ops", "s3cret-pw", 200, `FLAG_READ_ONLY="false"`},
				{"GET", "/monitoring/api/queues", "ops", "s3cret-pw", 200, `"queues"`},
				{"GET", "/upstreams/", "", "", 401, ""},
				{"GET", "/upstreams/", "ops", "wrong", 401, ""},
				{"GET", "/upstreams/", "ops", "s3cret-pw", 200, "upstreams page"},
				{"GET", "/metrics", "", "", 200, "refreshq_tasks_total"},
				{"GET", "/healthz", "", "", 200, "ok"},
				{"GET", "/readyz", "", "", 200, "ready"},
			},
		},
		{
			name: "credentials also guard the UI on loopback",
			addr: "127.0.0.1:8080",
			user: "ops", pass: "pw",
			reqs: []req{
				{"GET", "/monitoring/", "", "", 401, ""},
				{"GET", "/monitoring/", "ops", "pw", 200, "Asynq - Monitoring"},
			},
		},
		{
			name: "pprof off by default",
			addr: "127.0.0.1:8080",
			reqs: []req{
				{"GET", "/debug/pprof/", "", "", 404, ""},
				{"GET", "/debug/pprof/cmdline", "", "", 404, ""},
			},
		},
		{
			name:  "pprof on",
			addr:  "127.0.0.1:8080",
			pprof: true,
			reqs: []req{
				{"GET", "/debug/pprof/", "", "", 200, "goroutine"},
				{"GET", "/debug/pprof/goroutine?debug=1", "", "", 200, "goroutine profile"},
			},
		},
		{
			name: "pprof on with credentials sits behind them",
			addr: "0.0.0.0:8080",
			user: "ops", pass: "pw",
			pprof: true,
			reqs: []req{
				{"GET", "/debug/pprof/cmdline", "", "", 401, ""},
				{"GET", "/debug/pprof/", "ops", "pw", 200, "goroutine"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, opshttp.Options{
				Addr: tt.addr, RedisOpt: ropt,
				MonitorUser: tt.user, MonitorPassword: tt.pass,
				Metrics: fakeMetrics, PProf: tt.pprof, Upstreams: fakeUpstreams,
			})
			for _, r := range tt.reqs {
				got := do(s.Handler(), r.method, r.path, r.user, r.pass)
				if got.code != r.wantCode || !strings.Contains(got.body, r.wantBody) {
					t.Errorf("%s %s (user %q): got %d %.200q, want %d containing %q",
						r.method, r.path, r.user, got.code, got.body, r.wantCode, r.wantBody)
				}
				if got.code == 401 {
					if h := got.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Basic ") {
						t.Errorf("%s %s: 401 without a Basic WWW-Authenticate header (got %q)", r.method, r.path, h)
					}
				}
				if tt.pass != "" && strings.Contains(got.body, tt.pass) && r.user == "" {
					t.Errorf("%s %s: the password shows up in the response", r.method, r.path)
				}
			}
		})
	}
}

// PROMETHEUS_URL turns on asynqmon's Metrics tab, which queries it.
func TestPrometheusURLReachesTheUI(t *testing.T) {
	s := newServer(t, opshttp.Options{Addr: "127.0.0.1:0", RedisOpt: redistest.ConnOpt(t), PrometheusURL: "http://prom.example:9090"})
	got := do(s.Handler(), "GET", "/monitoring/", "", "")
	if got.code != 200 || !strings.Contains(got.body, `PROMETHEUS_SERVER_ADDRESS="http:\/\/prom.example:9090"`) {
		t.Errorf("GET /monitoring/ = %d %.300q; want the page to carry the Prometheus address", got.code, got.body)
	}
}

func TestHalfConfiguredCredentials(t *testing.T) {
	tests := []struct {
		name, user, pass, wantErr string
	}{
		{"user without password", "ops", "", "MONITOR_PASSWORD is not set"},
		{"password without user", "", "hunter2-pw", "MONITOR_USER is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := opshttp.New(opshttp.Options{
				Addr: "127.0.0.1:8080", RedisOpt: asynq.RedisClientOpt{Addr: "127.0.0.1:1"},
				MonitorUser: tt.user, MonitorPassword: tt.pass,
			})
			if err == nil {
				s.Close()
				t.Fatal("New accepted half-configured credentials")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			if tt.pass != "" && strings.Contains(err.Error(), tt.pass) {
				t.Errorf("error %q echoes the password", err)
			}
		})
	}
}

func TestNewRejectsBadSetups(t *testing.T) {
	tests := []struct {
		name    string
		opt     opshttp.Options
		wantErr string
	}{
		{"UI on loopback needs Redis", opshttp.Options{Addr: "127.0.0.1:8080"}, "RedisOpt is required"},
		{"an Extra route may not shadow /metrics", opshttp.Options{
			Addr: ":8080", Metrics: fakeMetrics,
			Extra: map[string]http.Handler{"GET /metrics": fakeMetrics},
		}, `route "GET /metrics"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := opshttp.New(tt.opt)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestUIOffNeedsNoRedis(t *testing.T) {
	s := newServer(t, opshttp.Options{Addr: ":8080", Metrics: fakeMetrics})
	if got := do(s.Handler(), "GET", "/metrics", "", ""); got.code != 200 {
		t.Errorf("/metrics = %d, want 200", got.code)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		ready    func(context.Context) error
		wantCode int
		wantBody string
	}{
		{"no check configured", nil, 200, "ready\n"},
		{"check passes", func(context.Context) error { return nil }, 200, "ready\n"},
		{"draining", func(context.Context) error { return errors.New("draining") }, 503, "not ready: draining\n"},
		{"Redis hangs past the deadline", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("redis ping: %w", ctx.Err())
		}, 503, "not ready: redis ping: context deadline exceeded\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, opshttp.Options{Addr: ":8080", Ready: tt.ready})
			got := do(s.Handler(), "GET", "/readyz", "", "")
			if got.code != tt.wantCode || got.body != tt.wantBody {
				t.Errorf("/readyz = %d %q, want %d %q", got.code, got.body, tt.wantCode, tt.wantBody)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store so probes see the live state", cc)
			}
		})
	}
}

func TestExtraRoutesMounted(t *testing.T) {
	s := newServer(t, opshttp.Options{Addr: ":8080", Extra: map[string]http.Handler{
		"/v1/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api "+r.URL.Path) }),
	}})
	if got := do(s.Handler(), "POST", "/v1/refreshes", "", ""); got.code != 200 || got.body != "api /v1/refreshes" {
		t.Errorf("POST /v1/refreshes = %d %q, want the Extra handler", got.code, got.body)
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	s := newServer(t, opshttp.Options{
		Addr: ":8080", RedisOpt: redistest.ConnOpt(t),
		MonitorUser: "ops", MonitorPassword: "pw-that-must-not-leak",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	do(s.Handler(), "GET", "/monitoring/", "ops", "pw-that-must-not-leak-2")
	do(s.Handler(), "GET", "/monitoring/", "pw-that-must-not-leak", "x")
	if !strings.Contains(logs.String(), "wrong credentials") {
		t.Errorf("a failed login left no log line:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "pw-that-must-not-leak") {
		t.Errorf("the password reached the log:\n%s", logs.String())
	}
}

func TestMonitoringAPIListsEnqueuedQueue(t *testing.T) {
	ropt := redistest.ConnOpt(t)
	q := redistest.Queue(t, ropt)
	redistest.Enqueue(t, ropt, q, 3)
	s := newServer(t, opshttp.Options{Addr: "127.0.0.1:0", RedisOpt: ropt})

	got := do(s.Handler(), "GET", "/monitoring/api/queues", "", "")
	var body struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(got.body), &body); err != nil || got.code != 200 {
		t.Fatalf("GET /monitoring/api/queues = %d %.300q (%v)", got.code, got.body, err)
	}
	for _, qi := range body.Queues {
		if qi.Queue == q {
			if qi.Pending != 3 {
				t.Errorf("queue %s shows %d pending, want 3", q, qi.Pending)
			}
			return
		}
	}
	t.Errorf("queue %s missing from %s", q, got.body)
}

// The full UI's "run" buttons on archived tasks are how an operator re-runs
// a failed refresh; the auth wrapper must let those POSTs through.
func TestRunArchivedTaskThroughUI(t *testing.T) {
	ropt := redistest.ConnOpt(t)
	q := redistest.Queue(t, ropt)
	ids := redistest.Enqueue(t, ropt, q, 3)
	insp := asynq.NewInspector(ropt)
	defer insp.Close()
	for _, id := range ids {
		if err := insp.ArchiveTask(q, id); err != nil {
			t.Fatalf("archive: %v", err)
		}
	}
	s := newServer(t, opshttp.Options{Addr: ":8080", RedisOpt: ropt, MonitorUser: "ops", MonitorPassword: "pw"})
	h := s.Handler()

	if got := do(h, "POST", "/monitoring/api/queues/"+q+"/archived_tasks/"+ids[0]+":run", "", ""); got.code != 401 {
		t.Errorf("run without credentials = %d, want 401", got.code)
	}
	steps := []struct {
		path        string
		wantPending int
	}{
		{"/archived_tasks/" + ids[0] + ":run", 1},
		{"/archived_tasks:run_all", 3},
	}
	for _, st := range steps {
		got := do(h, "POST", "/monitoring/api/queues/"+q+st.path, "ops", "pw")
		if got.code >= 300 {
			t.Fatalf("POST %s = %d %q", st.path, got.code, got.body)
		}
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		if info.Pending != st.wantPending || info.Archived != 3-st.wantPending {
			t.Errorf("after %s: pending %d archived %d, want %d and %d",
				st.path, info.Pending, info.Archived, st.wantPending, 3-st.wantPending)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:1": true, "localhost:8080": true, "LOCALHOST:1": true,
		"[::1]:8080": true, "::1": true, "127.0.0.1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "10.0.0.1:8080": false,
		"worker.internal:8080": false, "": false,
	}
	for addr, want := range tests {
		if got := opshttp.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// newHTTPTest serves s on a real 127.0.0.1 port, for clients such as a
// browser that need one.
func newHTTPTest(t *testing.T, s *opshttp.Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}
