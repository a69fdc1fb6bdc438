package opshttp_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/quota/quotatest"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/statuspage"
	"github.com/refreshq/refreshq/results"
)

// upstreamsScreenshot is the README's picture of the upstreams page,
// rewritten only with UPDATE_SCREENSHOT=1.
const upstreamsScreenshot = "../../docs/img/upstreams.png"

// The upstreams page, opened in a browser during a 429 storm, shows the
// cooldown with its time left and cause, escapes what upstreams and
// producers wrote, links to the web UI, and reloads itself.
func TestUpstreamsPageInBrowser(t *testing.T) {
	ctx := browser(t)
	rdb, _ := redistest.Client(t)
	bg := context.Background()
	prefix := redistest.Keys(t, rdb, "refreshq:rl:test:") + ":"
	stream := redistest.Keys(t, rdb, "results_")
	lim := ratelimit.New(rdb, ratelimit.Options{Prefix: prefix})
	bundle := ratelimit.Key{Provider: "bundle_social", KeyID: ratelimit.KeyID("bundle-key"), Endpoint: ratelimit.EndpointID("https://api.bundle.social")}
	hooked := ratelimit.Key{Provider: "hooked", KeyID: ratelimit.KeyID("hooked-key"), Endpoint: ratelimit.EndpointID("https://api.hooked.so")}
	bundleBudget, _ := ratelimit.ParseBudget("5/1s,20/10s,100/1m")
	hookedBudget, _ := ratelimit.ParseBudget("10/1s")
	must(t, lim.Announce(bg, bundle, bundleBudget, 5000))
	must(t, lim.Announce(bg, hooked, hookedBudget, 0))
	admit := quotatest.New(t, rdb, lim)
	for range 4 {
		_, err := admit.Admit(bg, bundle, bundleBudget, 5000)
		must(t, err)
	}
	// The storm: hooked answered 429 with Retry-After: 45.
	_, err := quotatest.Cooldown(bg, rdb, lim, hooked, 45*time.Second)
	must(t, err)

	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	must(t, err)
	m.Wait("hooked", "default", metrics.WaitCooldown, 3*time.Second)
	m.Wait("bundle_social", "low", metrics.WaitBudget, 200*time.Millisecond)
	publish(t, rdb, stream, []results.Entry{
		{TaskID: "7d1e5c1a", Provider: "bundle_social", Subject: "team-1/TIKTOK", Queue: "default", Status: results.StatusSucceeded, Attempts: 1, HTTPStatus: 200},
		{TaskID: "9b2f07c4", Provider: "hooked", Subject: "acc-<b>42</b>", Queue: "critical", Status: results.StatusFailed, Attempts: 6, HTTPStatus: 429,
			ErrorKind: results.KindRateLimited, Error: `hooked: 429 Too Many Requests: <img src=x onerror="window.pwned=1">`},
		{TaskID: "c3a8e911", Provider: "hooked", Subject: "acc-7", Queue: "default", Status: results.StatusSucceeded, Attempts: 2, HTTPStatus: 200},
	})

	page := statuspage.New(statuspage.Options{
		Limiter: lim, Results: results.NewReader(rdb, stream), Metrics: reg, Process: "worker-1:4711",
		Providers: []statuspage.Provider{
			{Name: "bundle_social", KeyVar: "BUNDLE_SOCIAL_API_KEY", KeyID: bundle.KeyID},
			{Name: "hooked", KeyVar: "HOOKED_API_KEY", KeyID: hooked.KeyID},
		},
		MonitoringPath: opshttp.MonitoringPath,
	})
	s := newServer(t, opshttp.Options{Addr: "127.0.0.1:0", RedisOpt: redistest.ConnOpt(t), Upstreams: page})
	srv := newHTTPTest(t, s)

	if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/upstreams/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	waitForText(ctx, t, "paused")
	left, err := chromedp.Run(step(t, ctx), chromedp.Text(chromedp.CSS(`#provider-hooked .cooldown-left`)))
	if err != nil {
		t.Fatalf("read the cooldown: %v", err)
	}
	cause, err := chromedp.Run(step(t, ctx), chromedp.Text(chromedp.CSS(`#provider-hooked .cooldown-cause`)))
	if err != nil {
		t.Fatalf("read the cooldown's cause: %v", err)
	}
	if d, err := time.ParseDuration(strings.TrimSpace(left)); err != nil || d <= 30*time.Second || d > 45*time.Second {
		t.Errorf("cooldown left %q, want 30-45s of the 45s Retry-After", left)
	}
	if !strings.Contains(cause, "429") || !strings.Contains(cause, "45s") {
		t.Errorf("cooldown cause %q, want the 429 and its 45s", cause)
	}
	text, err := chromedp.Run(step(t, ctx), chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{bundle.KeyID, "4 / 5 per 1s", "4 / 5000 used", "rate_limited", `onerror="window.pwned=1"`, "acc-<b>42</b>", "worker-1:4711", "reason=cooldown"} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
	if strings.Contains(text, "hooked-key") || strings.Contains(text, "bundle-key") {
		t.Error("the page shows an API key")
	}
	pwned, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](`typeof window.pwned`))
	if err != nil || pwned != "undefined" {
		t.Errorf("markup from a result ran in the page (window.pwned is %s, %v)", pwned, err)
	}
	href, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](`document.querySelector('header a').getAttribute('href')`))
	if err != nil || href != "/monitoring/" {
		t.Errorf("link to the web UI %q (%v), want /monitoring/", href, err)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "upstreams.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		out = upstreamsScreenshot
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}

	// The web UI links back to the page.
	if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/monitoring/")); err != nil {
		t.Fatalf("open the web UI: %v", err)
	}
	waitForText(ctx, t, "Upstreams status")
	back, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](`document.getElementById('refreshq-upstreams-link').getAttribute('href')`))
	if err != nil || back != "/upstreams/" {
		t.Errorf("web UI's link to the upstreams page %q (%v), want /upstreams/", back, err)
	}
	if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/upstreams/")); err != nil {
		t.Fatalf("open the page again: %v", err)
	}
	waitForText(ctx, t, "paused")

	// The page reloads itself: a mark left on this load is gone on the next.
	if _, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[int](`window.reloadMark = 1`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3*statuspage.DefaultRefresh + 5*time.Second)
	for {
		mark, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](`typeof window.reloadMark`))
		if err == nil && mark == "undefined" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not reload itself (it should every %s)", statuspage.DefaultRefresh)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, rdb redis.UniversalClient, stream string, entries []results.Entry) {
	t.Helper()
	p := results.NewPublisher(rdb, stream, time.Minute)
	now := time.Now()
	for i, e := range entries {
		e.TaskType = e.Provider + ":refresh"
		e.EnqueuedAt, e.FinishedAt, e.Worker = now.Add(-2*time.Second), now.Add(time.Duration(i)*time.Second), "worker-1:4711"
		if _, _, err := p.Publish(context.Background(), e, 1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), results.IndexKey(stream, e.TaskID)) })
	}
}
