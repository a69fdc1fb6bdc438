package opshttp_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/redistest"
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

// logIn has the tab send Basic credentials with every request, including
// the UI's own API calls, as a browser's remembered login would.
func logIn(ctx context.Context, t *testing.T, user, password string) {
	t.Helper()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
}

func TestUIShowsQueueInBrowser(t *testing.T) {
	ctx := browser(t)
	ropt := redistest.ConnOpt(t)
	// A short name keeps the README's screenshot readable.
	q := fmt.Sprintf("refreshq-ui-%06x", rand.IntN(1<<24))
	redistest.DeleteQueueAtEnd(t, ropt, q)
	redistest.Enqueue(t, ropt, q, 5)
	redistest.Enqueue(t, ropt, q, 2, asynq.ProcessIn(time.Hour))
	archived := redistest.Enqueue(t, ropt, q, 1)
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

		logIn(ctx, t, "ops", "ui-test-pw")
		if err := chromedp.Do(step(t, ctx), chromedp.Navigate(srv.URL+"/monitoring/")); err != nil {
			t.Fatalf("open the UI with credentials: %v", err)
		}
		waitForText(ctx, t, q)

		// The operator pauses and resumes the queue with the row's buttons,
		// as a person would: the UI's own writes pass the same-origin check.
		for _, want := range []struct {
			paused bool
			shown  string
		}{{true, "paused"}, {false, "run"}} {
			clickQueueAction(ctx, t, q)
			poll.Until(t, 30*time.Second, fmt.Sprintf("queue paused=%v in Redis", want.paused), func() bool {
				info, err := insp.GetQueueInfo(q)
				return err == nil && info.Paused == want.paused
			})
			waitForRowState(ctx, t, q, want.shown)
		}

		// A page of another origin (another port) posts a form to the UI.
		// The browser adds the remembered credentials; the UI refuses.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<html><body><form id="f" method="POST" action="%s/monitoring/api/queues/%s:pause"></form>
<script>document.getElementById("f").submit()</script></body></html>`, srv.URL, q)
		}))
		defer evil.Close()
		if err := chromedp.Do(step(t, ctx), chromedp.Navigate(evil.URL)); err != nil {
			t.Fatalf("open the other site's page: %v", err)
		}
		waitForText(ctx, t, "403 forbidden")
		if info, err := insp.GetQueueInfo(q); err != nil || info.Paused {
			t.Errorf("a form on another site paused the queue (paused=%v, %v)", info != nil && info.Paused, err)
		}
	})
}

// clickQueueAction hovers over q's row on the dashboard, which shows its
// pause (or resume) and delete buttons, and clicks the first one with the
// mouse.
func clickQueueAction(ctx context.Context, t *testing.T, q string) {
	t.Helper()
	rect := func(sel string) (x, y float64) {
		t.Helper()
		var xy []float64
		poll.Until(t, 30*time.Second, "the action cell of "+q, func() bool {
			js := fmt.Sprintf(`(() => {
  const a = [...document.querySelectorAll("th a")].find(e => e.textContent === %q);
  if (!a) return [];
  const row = a.closest("tr");
  row.scrollIntoView({block: "center"});
  const el = %s;
  if (!el) return [];
  const r = el.getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
})()`, q, sel)
			got, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[[]float64](js))
			xy = got
			return err == nil && len(got) == 2
		})
		return xy[0], xy[1]
	}
	x, y := rect(`row.lastElementChild`)
	if err := chromedp.Do(step(t, ctx), chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y)); err != nil {
		t.Fatalf("hover over the row: %v", err)
	}
	// Two buttons appear on hover: pause or resume, then delete.
	x, y = rect(`row.lastElementChild.querySelectorAll("button").length === 2 ? row.lastElementChild.querySelector("button") : null`)
	if err := chromedp.Do(step(t, ctx), chromedp.MouseClickXY(x, y)); err != nil {
		t.Fatalf("click the pause/resume button: %v", err)
	}
}

// waitForRowState waits until q's row shows state ("paused" or "run").
func waitForRowState(ctx context.Context, t *testing.T, q, state string) {
	t.Helper()
	js := fmt.Sprintf(`(() => {
  const a = [...document.querySelectorAll("th a")].find(e => e.textContent === %q);
  return a ? a.closest("tr").children[1].textContent : "";
})()`, q)
	poll.Until(t, 30*time.Second, fmt.Sprintf("row %s to show %q", q, state), func() bool {
		got, err := chromedp.Run(step(t, ctx), chromedp.Evaluate[string](js))
		return err == nil && got == state
	})
}
