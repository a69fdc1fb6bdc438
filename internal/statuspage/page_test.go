package statuspage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/statuspage"
	"github.com/refreshq/refreshq/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	lim    *ratelimit.Limiter
	pub    *results.Publisher
	reader *results.Reader
	key    ratelimit.Key
	budget ratelimit.Budget
}

// setup is a limiter and a results stream of the test's own, with one
// hooked key announced and paused by a 429.
func setup(t *testing.T) fixture {
	t.Helper()
	rdb, _ := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Keys(t, rdb, "refreshq:rl:test:") + ":"
	stream := redistest.Keys(t, rdb, "results_")
	f := fixture{
		lim:    ratelimit.New(rdb, ratelimit.Options{Prefix: prefix}),
		pub:    results.NewPublisher(rdb, stream, time.Minute),
		reader: results.NewReader(rdb, stream),
		key:    ratelimit.Key{Provider: "hooked", KeyID: ratelimit.KeyID("the-real-api-key")},
	}
	f.budget, _ = ratelimit.ParseBudget("5/1s,100/1m")
	if err := f.lim.Announce(ctx, f.key, f.budget, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := quotatest.Cooldown(ctx, rdb, f.lim, f.key, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	return f
}

func get(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/upstreams/", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /upstreams/ = %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestPageShowsFleetStateAndEscapes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	hostile := `<script>window.pwned=1</script>`
	_, _, err := f.pub.Publish(ctx, results.Entry{
		TaskID: "t-1", TaskType: "hooked:account_refresh", Queue: "default", Provider: "hooked",
		Subject: hostile, Status: results.StatusFailed, Attempts: 3, HTTPStatus: 429,
		ErrorKind: results.KindRateLimited, Error: "upstream said " + hostile,
		EnqueuedAt: time.Now().Add(-time.Second), FinishedAt: time.Now(), Worker: "h:1",
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Wait("hooked", "default", metrics.WaitCooldown, 1500*time.Millisecond)
	page := statuspage.New(statuspage.Options{
		Limiter: f.lim, Results: f.reader, Metrics: reg, Process: "host-a:42",
		Providers: []statuspage.Provider{
			{Name: "bundle_social", KeyVar: "BUNDLE_SOCIAL_API_KEY"},
			{Name: "hooked", KeyVar: "HOOKED_API_KEY", KeyID: f.key.KeyID},
		},
		MonitoringPath: "/monitoring",
	})
	body := get(t, page)
	for _, want := range []string{
		`data-key-id="` + f.key.KeyID + `"`, "served by this process",
		"paused, <span class=\"cooldown-left\">1m30s</span> left", ratelimit.CauseRetryAfter,
		"0 / 5 per 1s", "0 / 100 per 1m", "0 / 1000 used", "closed",
		"host-a:42", "reason=cooldown", "rate_limited", "429",
		"&lt;script&gt;window.pwned=1&lt;/script&gt;",
		`href="/monitoring/"`, `http-equiv="refresh"`, "2 Redis round trips",
		"No worker announced an API key for bundle_social", "BUNDLE_SOCIAL_API_KEY",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, hostile) {
		t.Error("page carries a result's text unescaped")
	}
	if strings.Contains(body, "the-real-api-key") {
		t.Error("page shows the API key itself")
	}
}

// With -monitor-only the page shows what Redis holds and says this process
// counts no waits, rather than showing zeros as if the fleet had none.
func TestMonitorOnlyShowsRedisState(t *testing.T) {
	f := setup(t)
	page := statuspage.New(statuspage.Options{
		Limiter: f.lim, Results: f.reader, Metrics: metrics.NewRegistry(), MonitorOnly: true,
		Providers: []statuspage.Provider{{Name: "hooked", KeyVar: "HOOKED_API_KEY"}},
	})
	body := get(t, page)
	for _, want := range []string{`data-key-id="` + f.key.KeyID + `"`, "cooldown-left", "runs no tasks"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "served by this process") {
		t.Error("a monitor claims to serve a key")
	}
}

func TestPageSaysWhenRedisIsDown(t *testing.T) {
	rdb, _ := redistest.Client(t)
	lim := ratelimit.New(rdb, ratelimit.Options{})
	rdb.Close()
	page := statuspage.New(statuspage.Options{Limiter: lim, Providers: []statuspage.Provider{{Name: "hooked"}}})
	if body := get(t, page); !strings.Contains(body, "Redis did not answer") {
		t.Errorf("page does not say Redis is down:\n%s", body)
	}
}
