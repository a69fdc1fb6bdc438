package opshttp_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/testenv"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// screenshotPath is the README's picture of the UI, rewritten only with
// UPDATE_SCREENSHOT=1 so an ordinary test run leaves the tree clean.
const screenshotPath = "../../docs/img/monitoring.png"

// browser starts a headless Chromium for the test and stops it at the end.
func browser(t *testing.T) context.Context {
	t.Helper()
	// go test shows skip messages only with -v, so CI fails instead.
	testenv.Program(t, chromiumPath, "apt-get install -y chromium (.ci/run installs it); the web UI was NOT checked in a browser")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // CI containers run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// Registered after TempDir, so Chromium is gone before its profile
	// directory is removed.
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser on a context without a deadline (a deadline there
	// would end the browser); a broken install fails here, not mid-test.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// step bounds one browser action, so a hung page fails that step with a
// message instead of eating the whole test's time.
func step(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitForText polls the rendered page until it shows want; the UI is a
// single-page app that fetches the queues after it loads.
func waitForText(ctx context.Context, t *testing.T, want string) {
	t.Helper()
	ctx = step(t, ctx)
	for {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err == nil && strings.Contains(text, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("page never showed %q (last error %v); page text:\n%s", want, err, text)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestUIShowsQueueInBrowser(t *testing.T) {
	ctx := browser(t)
	ropt := redisOpt(t)
	// A short name keeps the README's screenshot readable.
	q := fmt.Sprintf("refreshq-ui-%06x", rand.IntN(1<<24))
	cleanupQueue(t, ropt, q)
	enqueue(t, ropt, q, 5)
	enqueue(t, ropt, q, 2, asynq.ProcessIn(time.Hour))
	archived := enqueue(t, ropt, q, 1)
	insp := asynq.NewInspector(ropt)
	defer insp.Close()
	if err := insp.ArchiveTask(q, archived[0]); err != nil {
		t.Fatalf("archive: %v", err)
	}

	t.Run("loopback without credentials shows the queue read-only", func(t *testing.T) {
		s := newServer(t, opshttp.Options{Addr: "127.0.0.1:0", RedisOpt: ropt})
		srv := newHTTPTest(t, s)

		if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/monitoring/")); err != nil {
			t.Fatalf("open the UI: %v", err)
		}
		waitForText(ctx, t, q)

		readOnly, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(window.FLAG_READ_ONLY)`))
		if err != nil {
			t.Fatal(err)
		}
		if readOnly != "true" {
			t.Errorf("window.FLAG_READ_ONLY = %q, want true: the UI must hide its buttons without credentials", readOnly)
		}

		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		out := filepath.Join(t.TempDir(), "monitoring.png")
		if os.Getenv("UPDATE_SCREENSHOT") == "1" {
			out = screenshotPath
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", out, len(png))
	})

	t.Run("credentials set: refused without them, queue shown with them", func(t *testing.T) {
		s := newServer(t, opshttp.Options{Addr: "0.0.0.0:0", RedisOpt: ropt, MonitorUser: "ops", MonitorPassword: "ui-test-pw"})
		srv := newHTTPTest(t, s)

		// Headless Chromium turns a top-level 401 into a load error
		// (ERR_INVALID_AUTH_CREDENTIALS) rather than a page, so ask from a
		// page of the same origin what the server answers without credentials.
		if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/healthz")); err != nil {
			t.Fatalf("open /healthz: %v", err)
		}
		for _, path := range []string{"/monitoring/", "/monitoring/api/queues"} {
			status, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[int](
				`fetch("`+path+`", {credentials: "omit"}).then(r => r.status)`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatalf("fetch %s: %v", path, err)
			}
			if status != 401 {
				t.Errorf("GET %s without credentials from the browser = %d, want 401", path, status)
			}
		}

		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:ui-test-pw"))
		// The header rides on every request of the tab, including the
		// UI's own API calls, as a browser's remembered login would.
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
			network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/monitoring/")); err != nil {
			t.Fatalf("open the UI with credentials: %v", err)
		}
		waitForText(ctx, t, q)
	})
}
