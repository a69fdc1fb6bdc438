package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// TestClassification sends one request through the real hooked.so client to
// an upstream that answers as each case says, and checks what the handler
// makes of it: the HTTP status, the error kind and whether it tries again.
func TestClassification(t *testing.T) {
	answer := func(status int, header map[string]string, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name      string
		upstream  http.HandlerFunc // nil: nothing listens
		status    int
		kind      results.ErrorKind
		retry     bool
		hintAtMin time.Duration // a Retry-After hint at least this long
	}{
		{"200", answer(200, nil, `{"success":true,"data":{"account":{}}}`), 200, results.KindNone, false, 0},
		{"400", answer(400, nil, `{"message":"bad id"}`), 400, results.KindBadRequest, false, 0},
		{"401", answer(401, nil, `{"message":"no key"}`), 401, results.KindAuth, false, 0},
		{"402", answer(402, nil, `{"message":"pay"}`), 402, results.KindPaymentRequired, false, 0},
		{"403", answer(403, nil, `{"message":"forbidden"}`), 403, results.KindAuth, false, 0},
		{"404", answer(404, nil, `{"message":"no such account"}`), 404, results.KindNotFound, false, 0},
		{"3xx", answer(300, nil, ``), 300, results.KindServer, true, 0},
		{"429 seconds", answer(429, map[string]string{"Retry-After": "7"}, `{}`), 429, results.KindRateLimited, true, 7 * time.Second},
		{"429 HTTP-date", answer(429, map[string]string{"Retry-After": httpDate}, `{}`), 429, results.KindRateLimited, true, 60 * time.Second},
		{"500", answer(500, nil, `oops`), 500, results.KindServer, true, 0},
		{"503", answer(503, nil, ``), 503, results.KindServer, true, 0},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}, 0, results.KindTimeout, true, 0},
		{"network error", nil, 0, results.KindNetwork, true, 0},
		{"non-JSON body", answer(200, nil, `<html>hi</html>`), 200, results.KindInvalidResponse, false, 0},
		{"wrong-shape body", answer(200, nil, `[1,2,3]`), 200, results.KindInvalidResponse, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := "http://127.0.0.1:1" // refused
			if tc.upstream != nil {
				srv := httptest.NewServer(tc.upstream)
				defer srv.Close()
				url = srv.URL + "/api"
			}
			c, err := clients.NewHooked("key", clients.WithBaseURL(url), clients.WithTimeout(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			reply, err := c.Refresh(context.Background(), tasks.Hooked("acct-1"))
			o := classify(tasks.ProviderHooked, reply, err)
			if o.status != tc.status || o.kind != tc.kind || o.transient != tc.retry {
				t.Errorf("status %d, kind %q, retry %v (err %v); want %d, %q, %v", o.status, o.kind, o.transient, err, tc.status, tc.kind, tc.retry)
			}
			if tc.hintAtMin > 0 && (!o.hinted || o.retryAfter < tc.hintAtMin) {
				t.Errorf("Retry-After hint %v (hinted %v), want at least %v", o.retryAfter, o.hinted, tc.hintAtMin)
			}
			if tc.kind == results.KindRateLimited && !o.limited {
				t.Error("a 429 must wait without spending MAX_RETRIES")
			}
		})
	}
}
