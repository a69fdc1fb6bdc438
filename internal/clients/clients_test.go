package clients_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
)

const testKey = "sk-test-SECRET-4242"

// Base paths the test servers are mounted under: never "/", so a client
// that drops the base URL's path fails.
const (
	bundlePrefix = "/gw/bundle"
	hookedPrefix = "/gw/hooked"
)

// seen is one request as the test server received it.
type seen struct {
	method, path, escapedPath, rawQuery string
	header                              http.Header
	body                                []byte
}

type fixture struct {
	srv    *httptest.Server
	bundle *clients.BundleSocial
	hooked *clients.Hooked

	mu   sync.Mutex
	reqs []seen
}

func (f *fixture) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// setup starts a server that records each request and then runs h, and
// clients for both providers pointed at it under their base paths.
func setup(t *testing.T, h http.HandlerFunc, opts ...clients.Option) *fixture {
	t.Helper()
	f := &fixture{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{
			method: r.Method, path: r.URL.Path, escapedPath: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery,
			header: r.Header.Clone(), body: body,
		})
		f.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	var err error
	f.bundle, err = clients.NewBundleSocial(testKey, append([]clients.Option{
		clients.WithBaseURL(f.srv.URL + bundlePrefix), clients.WithHTTPClient(f.srv.Client()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.hooked, err = clients.NewHooked(testKey, append([]clients.Option{
		// A trailing slash must not double up in the joined path.
		clients.WithBaseURL(f.srv.URL + hookedPrefix + "/"), clients.WithHTTPClient(f.srv.Client()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// reply answers with a fixed status, headers and body.
func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const bundleOK = `{"success":true,"message":"ok","socialAccountId":"sa_1","socialAccount":{"id":"sa_1","type":"TIKTOK","teamId":"t1","createdAt":"2024-01-01T00:00:00Z","updatedAt":"2024-01-02T00:00:00Z"},"refreshedAt":"2024-01-02T00:00:00Z","limit":10,"used":1,"remaining":9,"windowSeconds":3600}`

const hookedOK = `{"success":true,"message":"Account refreshed successfully","data":{"account":{"id":"clx123abc","username":"fitnessguru","platform":"tiktok"}}}`

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		key  string
		opts []clients.Option
		want string
	}{
		{"empty key", "", nil, "API key is empty"},
		{"key with newline", testKey + "\n", nil, "whitespace"},
		{"relative base", testKey, []clients.Option{clients.WithBaseURL("api.bundle.social/x")}, "absolute http(s)"},
		{"ftp base", testKey, []clients.Option{clients.WithBaseURL("ftp://api.bundle.social")}, "absolute http(s)"},
		{"no host", testKey, []clients.Option{clients.WithBaseURL("http:///x")}, "absolute http(s)"},
		{"query", testKey, []clients.Option{clients.WithBaseURL("http://gw.internal/b?x=1")}, "query"},
		{"fragment", testKey, []clients.Option{clients.WithBaseURL("http://gw.internal/b#f")}, "fragment"},
		{"unparsable", testKey, []clients.Option{clients.WithBaseURL("http://gw.internal/%zz")}, "not a valid URL"},
		{"zero timeout", testKey, []clients.Option{clients.WithTimeout(0)}, "timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errB := clients.NewBundleSocial(tc.key, tc.opts...)
			_, errH := clients.NewHooked(tc.key, tc.opts...)
			for _, err := range []error{errB, errH} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Fatalf("error leaks the key: %v", err)
				}
			}
		})
	}
}

func TestBundleSendsDocumentedRequest(t *testing.T) {
	cases := []struct {
		name, base, wantPath string
		opts                 []clients.Option
		wantUA               string
	}{
		{name: "prefix", base: "/gw/bundle", wantPath: "/gw/bundle/api/v1/social-account/profile-refresh", wantUA: "refreshq/"},
		{name: "prefix with trailing slash", base: "/gw/bundle/", wantPath: "/gw/bundle/api/v1/social-account/profile-refresh", wantUA: "refreshq/"},
		{name: "root", base: "", wantPath: "/api/v1/social-account/profile-refresh", wantUA: "refreshq/"},
		{name: "custom user agent", base: "/gw/bundle", wantPath: "/gw/bundle/api/v1/social-account/profile-refresh",
			opts: []clients.Option{clients.WithUserAgent("probe/1")}, wantUA: "probe/1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, reply(200, bundleOK))
			c, err := clients.NewBundleSocial(testKey, append([]clients.Option{
				clients.WithBaseURL(f.srv.URL + tc.base), clients.WithHTTPClient(f.srv.Client()),
			}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.RefreshProfile(t.Context(), "team 1", "TIKTOK"); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.escapedPath != tc.wantPath || r.rawQuery != "" {
				t.Errorf("request = %s %s?%s, want POST %s", r.method, r.escapedPath, r.rawQuery, tc.wantPath)
			}
			for k, want := range map[string]string{"X-Api-Key": testKey, "Content-Type": "application/json", "Accept": "application/json"} {
				if got := r.header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if ua := r.header.Get("User-Agent"); !strings.HasPrefix(ua, tc.wantUA) {
				t.Errorf("User-Agent = %q, want prefix %q", ua, tc.wantUA)
			}
			var body map[string]any
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			if len(body) != 2 || body["type"] != "TIKTOK" || body["teamId"] != "team 1" {
				t.Errorf("body = %s, want {\"type\":\"TIKTOK\",\"teamId\":\"team 1\"}", r.body)
			}
		})
	}
}

func TestHookedEscapesAccountIDIntoOneSegment(t *testing.T) {
	cases := []struct{ id, wantEscaped string }{
		{"clx123abc", "clx123abc"},
		{"a/b?c", "a%2Fb%3Fc"},
		{"a b#c%d", "a%20b%23c%25d"},
		{"..", "%2E%2E"},
		{"ü", "%C3%BC"},
	}
	f := setup(t, reply(200, hookedOK))
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			n := len(f.requests())
			if _, err := f.hooked.RefreshAccount(t.Context(), tc.id); err != nil {
				t.Fatal(err)
			}
			r := f.requests()[n]
			want := hookedPrefix + "/v1/social/account/" + tc.wantEscaped + "/refresh"
			if r.method != http.MethodPost || r.escapedPath != want || r.rawQuery != "" {
				t.Errorf("request = %s %s?%s, want POST %s", r.method, r.escapedPath, r.rawQuery, want)
			}
			if got := strings.TrimSuffix(strings.TrimPrefix(r.path, hookedPrefix+"/v1/social/account/"), "/refresh"); got != tc.id {
				t.Errorf("server decoded account id %q, want %q", got, tc.id)
			}
			if r.header.Get("X-Api-Key") != testKey {
				t.Errorf("x-api-key = %q", r.header.Get("X-Api-Key"))
			}
			if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
				t.Errorf("sent a body (%q, Content-Type %q); the API takes none", r.body, r.header.Get("Content-Type"))
			}
		})
	}
}

func TestEmptyIDsAreRejectedWithoutARequest(t *testing.T) {
	f := setup(t, reply(200, bundleOK))
	_, err1 := f.bundle.RefreshProfile(t.Context(), "", "TIKTOK")
	_, err2 := f.bundle.RefreshProfile(t.Context(), "t1", "")
	_, err3 := f.hooked.RefreshAccount(t.Context(), "")
	for _, err := range []error{err1, err2, err3} {
		if !errors.Is(err, clients.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestBundleDecodesLeniently(t *testing.T) {
	// Seed-shaped, plus a field and an enum value the seed does not know,
	// and nulls where the seed allows them.
	body := `{"success":true,"message":"Profile refreshed","socialAccountId":"sa_9",
	"socialAccount":{"id":"sa_9","type":"SNAPCHAT","teamId":"t1","username":"neo","displayName":null,
	"avatarUrl":"https://a/x.png","externalId":null,"channels":[{"id":"c1","name":null,"webhook":{"id":null}}],
	"twitterSubType":"ultra","isTiktokBusinessAccount":true,"createdAt":"2024-01-01T00:00:00.000Z",
	"updatedAt":"2024-02-01T00:00:00.000Z","deletedAt":null,"brandNew":{"x":1}},
	"refreshedAt":"2024-02-01T00:00:00.000Z","limit":10,"used":3,"remaining":7,"windowSeconds":3600,"extra":[1,2]}`
	f := setup(t, reply(200, body, "X-Request-Id", "r-1"))
	got, err := f.bundle.RefreshProfile(t.Context(), "t1", "SNAPCHAT")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Body, []byte(body)) {
		t.Errorf("Body is not the response verbatim:\n%s", got.Body)
	}
	if got.StatusCode != 200 || got.Header.Get("X-Request-Id") != "r-1" {
		t.Errorf("StatusCode %d, X-Request-Id %q", got.StatusCode, got.Header.Get("X-Request-Id"))
	}
	a := got.SocialAccount
	switch {
	case !got.Success, got.Message != "Profile refreshed", got.SocialAccountID != "sa_9", got.RefreshedAt != "2024-02-01T00:00:00.000Z":
		t.Errorf("top level = %+v", got)
	case a.ID != "sa_9", a.Type != "SNAPCHAT", a.TeamID != "t1":
		t.Errorf("account = %+v", a)
	case a.Username == nil || *a.Username != "neo", a.DisplayName != nil, a.ExternalID != nil:
		t.Errorf("nullable fields: username %v, displayName %v, externalId %v", a.Username, a.DisplayName, a.ExternalID)
	case a.TwitterSubType == nil || *a.TwitterSubType != "ultra", a.IsTiktokBusinessAccount == nil || !*a.IsTiktokBusinessAccount:
		t.Errorf("enum/bool fields: %v %v", a.TwitterSubType, a.IsTiktokBusinessAccount)
	case len(a.Channels) != 1 || a.Channels[0].ID != "c1" || a.Channels[0].Name != nil:
		t.Errorf("channels = %+v", a.Channels)
	case a.CreatedAt == nil || *a.CreatedAt != "2024-01-01T00:00:00.000Z":
		t.Errorf("createdAt = %v", a.CreatedAt)
	}
	want := clients.RateLimit{Known: true, Limit: 10, Used: 3, Remaining: 7, WindowSeconds: 3600}
	if got.RateLimit != want {
		t.Errorf("RateLimit = %+v, want %+v", got.RateLimit, want)
	}
}

func TestBundleToleratesMissingAndMistypedOptionalFields(t *testing.T) {
	// limit as a string and no windowSeconds: the quota is unknown, the
	// refresh still succeeded.
	body := `{"success":true,"socialAccountId":"sa_1","socialAccount":{"id":"sa_1","type":"TIKTOK","teamId":"t1"},"limit":"10","used":2}`
	f := setup(t, reply(200, body))
	got, err := f.bundle.RefreshProfile(t.Context(), "t1", "TIKTOK")
	if err != nil {
		t.Fatal(err)
	}
	want := clients.RateLimit{Used: 2}
	if got.RateLimit != want || got.SocialAccount.TeamID != "t1" {
		t.Errorf("RateLimit = %+v (want %+v), account %+v", got.RateLimit, want, got.SocialAccount)
	}
}

func TestHookedDecodesLeniently(t *testing.T) {
	cases := []struct{ name, body string }{
		{"seed example", `{"success":true,"message":"Account refreshed successfully","data":{"account":{"id":"clx123abc","username":"fitnessguru","platform":"tiktok","stats":{"followers":1520000},"new":true}},"meta":{}}`},
		{"numeric id, unknown platform", `{"success":true,"data":{"account":{"id":42,"platform":"myspace"}}}`},
		{"no success field", `{"data":{"account":{}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, reply(200, tc.body))
			got, err := f.hooked.RefreshAccount(t.Context(), "clx123abc")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Body, []byte(tc.body)) {
				t.Errorf("Body is not verbatim: %s", got.Body)
			}
			var whole struct {
				Data struct{ Account json.RawMessage } `json:"data"`
			}
			_ = json.Unmarshal([]byte(tc.body), &whole)
			if !bytes.Equal(got.Data.Account, whole.Data.Account) {
				t.Errorf("Account = %s, want %s", got.Data.Account, whole.Data.Account)
			}
		})
	}
}

// A caller's context deadline shorter than the timeout still ends the call.
func TestCallerDeadlineIsATimeout(t *testing.T) {
	f := setup(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := f.hooked.RefreshAccount(ctx, "a1")
	te, ok := errors.AsType[*clients.TransportError](err)
	if !ok || !te.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v, want a TransportError with Timeout", err)
	}
}
