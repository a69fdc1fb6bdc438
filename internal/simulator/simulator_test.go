package simulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/fakeclock"
	"github.com/refreshq/refreshq/internal/simulator"
)

const (
	key    = "k-1"
	prefix = "/gw"
)

type env struct {
	sim *simulator.Simulator
	srv *httptest.Server
}

// setup serves a Simulator with opts under prefix (unless opts sets its
// own) and closes both at the end of the test.
func setup(t *testing.T, opts simulator.Options) *env {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = prefix
	}
	sim := simulator.New(opts)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	return &env{sim: sim, srv: srv}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map, failing the test when it is not JSON.
func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (e *env) do(t *testing.T, method, path, apiKey, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("x-api-key", apiKey)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func (e *env) bundle(t *testing.T, apiKey, team, platform string) resp {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"type": platform, "teamId": team})
	return e.do(t, http.MethodPost, prefix+"/api/v1/social-account/profile-refresh", apiKey, string(b))
}

func (e *env) hooked(t *testing.T, apiKey, escapedID string) resp {
	t.Helper()
	return e.do(t, http.MethodPost, prefix+"/v1/social/account/"+escapedID+"/refresh", apiKey, "")
}

func TestRouting(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		provider, subject        string
	}{
		{"bundle", "POST", "/gw/api/v1/social-account/profile-refresh", `{"type":"TIKTOK","teamId":"t1"}`, 200, "bundle_social", "t1/TIKTOK"},
		{"hooked", "POST", "/gw/v1/social/account/clx123abc/refresh", "", 200, "hooked", "clx123abc"},
		{"hooked escaped id", "POST", "/gw/v1/social/account/a%2Fb%3Fc/refresh", "", 200, "hooked", "a/b?c"},
		{"without the prefix", "POST", "/api/v1/social-account/profile-refresh", `{"type":"TIKTOK","teamId":"t1"}`, 404, "", ""},
		{"wrong method", "GET", "/gw/v1/social/account/a1/refresh", "", 404, "", ""},
		{"unescaped slash in id", "POST", "/gw/v1/social/account/a/b/refresh", "", 404, "", ""},
		{"empty id", "POST", "/gw/v1/social/account//refresh", "", 404, "", ""},
		{"unknown route", "POST", "/gw/v1/other", "", 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, simulator.Options{})
			r := e.do(t, tc.method, tc.path, key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			r.json(t)
			calls := e.sim.Calls()
			if len(calls) != 1 {
				t.Fatalf("recorded %d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.Provider != tc.provider || c.Subject != tc.subject || c.Status != tc.status || c.Method != tc.method || c.Path != tc.path || c.APIKey != key || c.N != 1 {
				t.Errorf("call = %+v", c)
			}
		})
	}
}

func TestBundleSuccessBodyHasTheSeedsShape(t *testing.T) {
	now := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	e := setup(t, simulator.Options{Now: func() time.Time { return now }})
	r := e.bundle(t, key, "acme", "INSTAGRAM")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	m := r.json(t)
	wantTop := []string{"success", "message", "socialAccountId", "socialAccount", "refreshedAt", "limit", "used", "remaining", "windowSeconds"}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(wantTop))) {
		t.Errorf("top-level keys = %v, want %v", got, wantTop)
	}
	acct, _ := m["socialAccount"].(map[string]any)
	wantAcct := []string{"id", "type", "teamId", "username", "displayName", "avatarUrl", "externalId", "userUsername",
		"userDisplayName", "userId", "channels", "mastodonServerId", "instagramConnectionMethod", "twitterSubType",
		"isTiktokBusinessAccount", "disconnectedCheckTryAt", "deleteOn", "createdAt", "updatedAt", "deletedAt"}
	if got := slices.Sorted(maps.Keys(acct)); !slices.Equal(got, slices.Sorted(slices.Values(wantAcct))) {
		t.Errorf("socialAccount keys = %v, want %v", got, wantAcct)
	}
	if m["success"] != true || m["socialAccountId"] == "" || m["socialAccountId"] != acct["id"] ||
		acct["type"] != "INSTAGRAM" || acct["teamId"] != "acme" || acct["createdAt"] == nil ||
		acct["updatedAt"] != "2025-05-06T07:08:09Z" || m["refreshedAt"] != "2025-05-06T07:08:09Z" {
		t.Errorf("body = %s", r.body)
	}
	limit, used, remaining, window := m["limit"].(float64), m["used"].(float64), m["remaining"].(float64), m["windowSeconds"].(float64)
	if limit < 1 || used != 1 || remaining != limit-used || window < 1 {
		t.Errorf("quota = %v/%v/%v per %vs", limit, used, remaining, window)
	}
	// The same subject is the same account on the next refresh.
	if again := e.bundle(t, key, "acme", "INSTAGRAM").json(t); again["socialAccountId"] != m["socialAccountId"] || again["used"].(float64) != 2 {
		t.Errorf("second refresh: id %v used %v", again["socialAccountId"], again["used"])
	}
}

func TestHookedSuccessBodyLooksLikeTheSeedsExample(t *testing.T) {
	e := setup(t, simulator.Options{})
	m := e.hooked(t, key, "a%2Fb").json(t)
	data, _ := m["data"].(map[string]any)
	acct, _ := data["account"].(map[string]any)
	if m["success"] != true || m["message"] != "Account refreshed successfully" || acct["id"] != "a/b" {
		t.Fatalf("body = %v", m)
	}
	for _, k := range []string{"username", "platform", "displayName", "bio", "avatarUrl", "isVerified", "stats", "analytics", "lastAnalyzed", "profileUrl"} {
		if _, ok := acct[k]; !ok {
			t.Errorf("account lacks %q", k)
		}
	}
	if stats, _ := acct["stats"].(map[string]any); stats["followers"] == nil {
		t.Errorf("stats = %v", acct["stats"])
	}
}

func TestAPIKey(t *testing.T) {
	cases := []struct {
		name   string
		opts   simulator.Options
		key    string
		status int
	}{
		{"missing", simulator.Options{}, "", 401},
		{"any key accepted when none configured", simulator.Options{}, "whatever", 200},
		{"configured key", simulator.Options{APIKey: "good"}, "good", 200},
		{"wrong key", simulator.Options{APIKey: "good"}, "bad", 403},
		{"one of APIKeys", simulator.Options{APIKey: "good", APIKeys: []string{"other"}}, "other", 200},
		{"missing with key configured", simulator.Options{APIKey: "good"}, "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.opts)
			b := e.bundle(t, tc.key, "t1", "TIKTOK")
			h := e.hooked(t, tc.key, "a1")
			if b.status != tc.status || h.status != tc.status {
				t.Fatalf("bundle %d, hooked %d; want %d", b.status, h.status, tc.status)
			}
			if tc.status == 200 {
				return
			}
			// Each provider's own error shape.
			if bm := b.json(t); bm["statusCode"] != float64(tc.status) || bm["message"] == "" {
				t.Errorf("bundle error body = %s", b.body)
			}
			if hm := h.json(t); hm["success"] != false || hm["message"] == "" {
				t.Errorf("hooked error body = %s", h.body)
			}
		})
	}
}

type wireIssue struct {
	Code string `json:"code"`
	Path []any  `json:"path"`
}

func TestBundleValidation(t *testing.T) {
	cases := []struct {
		name, body string
		issues     []string // code@path
	}{
		{"valid with unknown key", `{"type":"GOOGLE_BUSINESS","teamId":"t","extra":1}`, nil},
		{"missing type", `{"teamId":"t"}`, []string{"invalid_type@[type]"}},
		{"unknown platform", `{"type":"MYSPACE","teamId":"t"}`, []string{"invalid_enum_value@[type]"}},
		{"lower case platform", `{"type":"tiktok","teamId":"t"}`, []string{"invalid_enum_value@[type]"}},
		{"empty team", `{"type":"TIKTOK","teamId":""}`, []string{"too_small@[teamId]"}},
		{"numeric team", `{"type":"TIKTOK","teamId":7}`, []string{"invalid_type@[teamId]"}},
		{"null team and no type", `{"teamId":null}`, []string{"invalid_type@[type]", "invalid_type@[teamId]"}},
		{"array body", `[]`, []string{"invalid_type@[]"}},
		{"empty object", `{}`, []string{"invalid_type@[type]", "invalid_type@[teamId]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, simulator.Options{})
			r := e.do(t, "POST", prefix+"/api/v1/social-account/profile-refresh", key, tc.body)
			if tc.issues == nil {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				return
			}
			var body struct {
				StatusCode int         `json:"statusCode"`
				Message    string      `json:"message"`
				Issues     []wireIssue `json:"issues"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil || r.status != 400 || body.StatusCode != 400 || body.Message == "" {
				t.Fatalf("status %d body %s (%v)", r.status, r.body, err)
			}
			var got []string
			for _, is := range body.Issues {
				got = append(got, fmt.Sprintf("%s@%v", is.Code, is.Path))
			}
			if !slices.Equal(got, tc.issues) {
				t.Errorf("issues = %v, want %v", got, tc.issues)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		e := setup(t, simulator.Options{})
		r := e.do(t, "POST", prefix+"/api/v1/social-account/profile-refresh", key, `{"type":`)
		if r.status != 400 || r.json(t)["statusCode"] != float64(400) {
			t.Errorf("status %d body %s", r.status, r.body)
		}
	})
}

// epoch is where the simulator tests' clocks start.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRateLimitIsASlidingWindowPerKey(t *testing.T) {
	clk := fakeclock.New(epoch)
	e := setup(t, simulator.Options{Now: clk.Now, RateLimit: []simulator.Window{{N: 2, Per: time.Second}, {N: 3, Per: 10 * time.Second}}})
	ms := time.Millisecond
	steps := []struct {
		at         time.Duration
		key        string
		status     int
		retryAfter string
	}{
		{0, key, 200, ""},
		{100 * ms, key, 200, ""},
		{200 * ms, key, 429, "1"},     // 2/1s reached; the first leaves the window at 1s
		{200 * ms, "k-2", 200, ""},    // another key has its own windows
		{999 * ms, key, 429, "1"},     // still inside the second
		{1000 * ms, key, 200, ""},     // the request at 0 has left: 3 in 10s now
		{1500 * ms, key, 429, "9"},    // 3/10s reached: the one at 0 leaves at 10s
		{9999 * ms, key, 429, "1"},    // rejected requests do not count
		{10000 * ms, key, 200, ""},    // admitted: 100ms, 1000ms, 10000ms
		{10050 * ms, key, 429, "1"},   // 3 in 10s again; 100ms leaves at 10.1s
		{11000 * ms, key, 200, ""},    // only 10000ms is left in either window
		{11001 * ms, "k-2", 200, ""},  // k-2 made one request, long ago
		{11002 * ms, "k-2", 200, ""},  //
		{11003 * ms, "k-2", 429, "1"}, // its own 2/1s
	}
	for i, s := range steps {
		clk.Set(epoch.Add(s.at))
		r := e.bundle(t, s.key, "t1", "TIKTOK")
		if r.status != s.status || r.header.Get("Retry-After") != s.retryAfter {
			t.Fatalf("step %d at %v key %s: status %d Retry-After %q; want %d %q", i, s.at, s.key, r.status, r.header.Get("Retry-After"), s.status, s.retryAfter)
		}
		if s.status == 429 && r.json(t)["statusCode"] != float64(429) {
			t.Errorf("step %d: body %s", i, r.body)
		}
	}
}

func TestRateLimitIsPerProvider(t *testing.T) {
	clk := fakeclock.New(epoch)
	e := setup(t, simulator.Options{Now: clk.Now, RateLimit: []simulator.Window{{N: 1, Per: time.Minute}}})
	if s := e.bundle(t, key, "t1", "TIKTOK").status; s != 200 {
		t.Fatalf("bundle: %d", s)
	}
	if s := e.hooked(t, key, "a1").status; s != 200 {
		t.Fatalf("hooked with the same key: %d, want 200", s)
	}
	r := e.hooked(t, key, "a2")
	if r.status != 429 || r.header.Get("Retry-After") != "60" || r.json(t)["success"] != false {
		t.Fatalf("second hooked: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
}

func TestScript(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	cases := []struct {
		name   string
		script func(c simulator.Call) *simulator.Reply
		want   []int // statuses of successive calls
		check  func(t *testing.T, last resp)
	}{
		{name: "429 then 200", want: []int{429, 200, 200}, script: func(c simulator.Call) *simulator.Reply {
			if c.N == 1 {
				return &simulator.Reply{Status: 429, Header: http.Header{"Retry-After": {"1"}}}
			}
			return nil
		}},
		{name: "500, 500, 200", want: []int{500, 500, 200}, script: func(c simulator.Call) *simulator.Reply {
			if c.N <= 2 {
				return &simulator.Reply{Status: 500}
			}
			return nil
		}},
		{name: "always 500 with provider error body", want: []int{500, 500, 500, 500}, script: func(simulator.Call) *simulator.Reply {
			return &simulator.Reply{Status: 500}
		}, check: func(t *testing.T, last resp) {
			if last.json(t)["message"] == "" {
				t.Errorf("body %s", last.body)
			}
		}},
		{name: "non-JSON 200", want: []int{200}, script: func(simulator.Call) *simulator.Reply {
			return &simulator.Reply{Body: []byte("<html>hi</html>"), Header: http.Header{"Content-Type": {"text/html"}}}
		}, check: func(t *testing.T, last resp) {
			if string(last.body) != "<html>hi</html>" || last.header.Get("Content-Type") != "text/html" {
				t.Errorf("got %q (%s)", last.body, last.header.Get("Content-Type"))
			}
		}},
		{name: "huge body", want: []int{200}, script: func(simulator.Call) *simulator.Reply {
			return &simulator.Reply{Body: []byte(big)}
		}, check: func(t *testing.T, last resp) {
			if len(last.body) != len(big) {
				t.Errorf("body is %d bytes", len(last.body))
			}
		}},
		{name: "default success body for 201", want: []int{201}, script: func(simulator.Call) *simulator.Reply {
			return &simulator.Reply{Status: 201}
		}, check: func(t *testing.T, last resp) {
			if last.json(t)["success"] != true {
				t.Errorf("body %s", last.body)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []simulator.Call
			e := setup(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
				mu.Lock()
				seen = append(seen, c)
				mu.Unlock()
				return tc.script(c)
			}})
			var last resp
			for i, want := range tc.want {
				last = e.hooked(t, key, "acc")
				if last.status != want {
					t.Fatalf("call %d: status %d, want %d", i+1, last.status, want)
				}
			}
			if tc.check != nil {
				tc.check(t, last)
			}
			for i, c := range seen {
				if c.N != i+1 || c.Subject != "acc" || c.Provider != "hooked" || c.APIKey != key {
					t.Errorf("script saw %+v at call %d", c, i+1)
				}
			}
			var statuses []int
			for _, c := range e.sim.CallsFor("acc") {
				statuses = append(statuses, c.Status)
			}
			if !slices.Equal(statuses, tc.want) {
				t.Errorf("recorded statuses %v, want %v", statuses, tc.want)
			}
		})
	}
}

func TestScriptIsNotAskedAboutRejectedRequests(t *testing.T) {
	var asked atomic.Int32
	e := setup(t, simulator.Options{APIKey: key, Script: func(simulator.Call) *simulator.Reply {
		asked.Add(1)
		return &simulator.Reply{Status: 500}
	}})
	e.hooked(t, "", "a1")
	e.hooked(t, "wrong", "a1")
	e.do(t, "POST", prefix+"/api/v1/social-account/profile-refresh", key, `{}`)
	if n := asked.Load(); n != 0 {
		t.Errorf("script asked %d times about requests the API rejects first", n)
	}
}

func TestHangLastsUntilTheClientGivesUp(t *testing.T) {
	e := setup(t, simulator.Options{Script: func(simulator.Call) *simulator.Reply { return &simulator.Reply{Hang: true} }})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+prefix+"/v1/social/account/a1/refresh", nil)
	req.Header.Set("x-api-key", key)
	start := time.Now()
	_, err := e.srv.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if c := e.sim.Calls(); len(c) != 1 || c[0].Status != 0 {
		t.Errorf("calls = %+v, want one with Status 0", c)
	}
}

func TestCloseReleasesHungRequests(t *testing.T) {
	e := setup(t, simulator.Options{Script: func(simulator.Call) *simulator.Reply { return &simulator.Reply{Hang: true} }})
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+prefix+"/v1/social/account/a1/refresh", nil)
		req.Header.Set("x-api-key", key)
		res, err := e.srv.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	// Close only once the request is held, or it would not be released.
	for deadline := time.Now().Add(10 * time.Second); len(e.sim.Calls()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("request never arrived")
		}
	}
	e.sim.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a hung request got a response; it should be dropped")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

func TestLatencyAndDelay(t *testing.T) {
	e := setup(t, simulator.Options{Latency: 150 * time.Millisecond, Script: func(c simulator.Call) *simulator.Reply {
		if c.Subject == "slow" {
			return &simulator.Reply{Delay: 300 * time.Millisecond}
		}
		return nil
	}})
	for subject, least := range map[string]time.Duration{"fast": 150 * time.Millisecond, "slow": 450 * time.Millisecond} {
		start := time.Now()
		if r := e.hooked(t, key, subject); r.status != 200 {
			t.Fatalf("%s: %d", subject, r.status)
		}
		if d := time.Since(start); d < least {
			t.Errorf("%s answered after %v, want at least %v", subject, d, least)
		}
	}
}

func TestRandomOutcomes(t *testing.T) {
	cases := []struct {
		name   string
		opts   simulator.Options
		status int
	}{
		{"P429", simulator.Options{P429: 1}, 429},
		{"P500", simulator.Options{P500: 1}, 500},
		{"P404", simulator.Options{P404: 1}, 404},
		{"none", simulator.Options{}, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, tc.opts)
			forms := map[string]bool{}
			for range 30 {
				r := e.hooked(t, key, "a1")
				if r.status != tc.status {
					t.Fatalf("status %d, want %d", r.status, tc.status)
				}
				if tc.status != 429 {
					continue
				}
				ra := r.header.Get("Retry-After")
				if n, err := strconv.Atoi(ra); err == nil {
					if n < 1 || n > 3 {
						t.Errorf("Retry-After %d, want 1-3", n)
					}
					forms["seconds"] = true
					continue
				}
				when, err := http.ParseTime(ra)
				date, _ := http.ParseTime(r.header.Get("Date"))
				if d := when.Sub(date); err != nil || d < time.Second || d > 3*time.Second {
					t.Errorf("Retry-After %q (Date %q)", ra, r.header.Get("Date"))
				}
				forms["date"] = true
			}
			if tc.status == 429 && len(forms) != 2 {
				t.Errorf("saw Retry-After forms %v in 30 answers, want both", forms)
			}
		})
	}
}

func TestSeedMakesRunsRepeatable(t *testing.T) {
	run := func() []int {
		e := setup(t, simulator.Options{Seed: 7, P429: 0.3, P500: 0.3})
		var out []int
		for range 20 {
			out = append(out, e.hooked(t, key, "a1").status)
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different outcomes:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 200) || !slices.Contains(a, 429) || !slices.Contains(a, 500) {
		t.Errorf("outcomes %v lack a mix", a)
	}
}

func TestCallsAreCountedPerSubjectUnderConcurrency(t *testing.T) {
	e := setup(t, simulator.Options{})
	const per = 10
	subjects := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for _, s := range subjects {
		for range per {
			wg.Go(func() {
				// Not e.hooked: t.Fatal must not run off the test's goroutine.
				req, _ := http.NewRequest("POST", e.srv.URL+prefix+"/v1/social/account/"+s+"/refresh", nil)
				req.Header.Set("x-api-key", key)
				res, err := e.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			})
		}
	}
	wg.Wait()
	if n := len(e.sim.Calls()); n != per*len(subjects) {
		t.Fatalf("recorded %d calls", n)
	}
	for _, s := range subjects {
		var ns []int
		for _, c := range e.sim.CallsFor(s) {
			ns = append(ns, c.N)
		}
		slices.Sort(ns)
		for i, n := range ns {
			if n != i+1 {
				t.Fatalf("%s: N values %v, want 1..%d", s, ns, per)
			}
		}
	}
	e.sim.Reset()
	if len(e.sim.Calls()) != 0 {
		t.Fatal("Reset kept calls")
	}
	e.hooked(t, key, "a")
	if c := e.sim.CallsFor("a"); len(c) != 1 || c[0].N != 1 {
		t.Errorf("after Reset: %+v, want N to start again at 1", c)
	}
}

// Serving the providers under separate prefixes with one Simulator, as the
// Prefix doc describes.
func TestSeparatePrefixesWithStripPrefix(t *testing.T) {
	sim := simulator.New(simulator.Options{})
	mux := http.NewServeMux()
	mux.Handle("/bundle/", http.StripPrefix("/bundle", sim))
	mux.Handle("/hooked/", http.StripPrefix("/hooked", sim))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	e := &env{sim: sim, srv: srv}
	b := e.do(t, "POST", "/bundle/api/v1/social-account/profile-refresh", key, `{"type":"TIKTOK","teamId":"t"}`)
	h := e.do(t, "POST", "/hooked/v1/social/account/x%2Fy/refresh", key, "")
	if b.status != 200 || h.status != 200 {
		t.Fatalf("bundle %d, hooked %d", b.status, h.status)
	}
	if c := sim.CallsFor("x/y"); len(c) != 1 {
		t.Errorf("escaped id lost through StripPrefix: %+v", sim.Calls())
	}
}

func TestResetDuringARequest(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	e := setup(t, simulator.Options{Script: func(c simulator.Call) *simulator.Reply {
		if c.Subject == "first" {
			close(held)
			<-release
		}
		return nil
	}})
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.srv.URL+prefix+"/v1/social/account/first/refresh", nil)
		req.Header.Set("x-api-key", key)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	<-held
	e.sim.Reset()
	close(release)
	if s := <-done; s != 200 {
		t.Fatalf("in-flight request across Reset: status %d", s)
	}
	e.hooked(t, key, "second")
	if c := e.sim.Calls(); len(c) != 1 || c[0].Subject != "second" || c[0].Status != 200 {
		t.Errorf("calls after Reset = %+v, want only the later one", c)
	}
}
