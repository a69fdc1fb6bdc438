package clients_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refreshq/refreshq/internal/clients"
)

// call runs one refresh for the named provider against f.
func call(ctx context.Context, f *fixture, provider string) error {
	if provider == "bundle_social" {
		_, err := f.bundle.RefreshProfile(ctx, "t1", "TIKTOK")
		return err
	}
	_, err := f.hooked.RefreshAccount(ctx, "a1")
	return err
}

var providers = []string{"bundle_social", "hooked"}

func TestNon2xxIsAPIError(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name    string
		h       http.HandlerFunc
		status  int
		message string
		issues  []string
		// retry is the expected RetryAfter, checked within slack.
		retry      time.Duration
		retryKnown bool
		slack      time.Duration
		errText    string // for bundle_social
	}{
		{name: "400 with issues", status: 400,
			h:       reply(400, `{"statusCode":400,"message":"Validation failed","issues":[{"code":"invalid_enum_value","message":"Invalid enum value","path":["type"]},{"code":null,"message":"Required","path":["teamId",0]},{"message":"odd","path":null,"received":"x"}]}`),
			message: "Validation failed", issues: []string{"type: Invalid enum value", "teamId.0: Required", "odd"},
			errText: "bundle_social: 400 Bad Request: Validation failed; type: Invalid enum value; teamId.0: Required; odd"},
		{name: "401", status: 401, h: reply(401, `{"statusCode":401,"message":"Unauthorized"}`), message: "Unauthorized",
			errText: "bundle_social: 401 Unauthorized: Unauthorized"},
		{name: "402", status: 402, h: reply(402, `{"statusCode":402,"message":"No credits"}`), message: "No credits"},
		{name: "403", status: 403, h: reply(403, `{"message":"Forbidden resource","error":"Forbidden","statusCode":403}`), message: "Forbidden resource"},
		{name: "404", status: 404, h: reply(404, `{"statusCode":404,"message":"Social account not found"}`), message: "Social account not found",
			errText: "bundle_social: 404 Not Found: Social account not found"},
		{name: "404 NestJS list message", status: 404, h: reply(404, `{"message":["a","b"]}`), message: "a; b"},
		{name: "404 error field only", status: 404, h: reply(404, `{"error":"Not Found"}`), message: "Not Found"},
		{name: "429 Retry-After seconds", status: 429, h: reply(429, `{"message":"slow down"}`, "Retry-After", "7"),
			message: "slow down", retry: 7 * time.Second, retryKnown: true,
			errText: "bundle_social: 429 Too Many Requests: slow down (retry after 7s)"},
		{name: "429 Retry-After HTTP-date", status: 429, h: reply(429, `{"message":"slow down"}`, "Retry-After", httpDate),
			message: "slow down", retry: 90 * time.Second, retryKnown: true, slack: 3 * time.Second},
		{name: "429 X-RateLimit-Reset", status: 429, h: reply(429, `{}`, "X-RateLimit-Reset", "3"),
			message: "{}", retry: 3 * time.Second, retryKnown: true},
		{name: "429 without headers", status: 429, h: reply(429, `{"message":"slow down"}`), message: "slow down"},
		{name: "500", status: 500, h: reply(500, `{"statusCode":500,"message":"Internal server error"}`, "Retry-After", "5"),
			message: "Internal server error"}, // Retry-After is only read on 429 and 503
		{name: "503 with Retry-After", status: 503, h: reply(503, `upstream connect error`, "Retry-After", "12"),
			message: "upstream connect error", retry: 12 * time.Second, retryKnown: true},
		{name: "non-JSON text", status: 502, h: reply(502, "  <html>Bad gateway</html>\n"), message: "<html>Bad gateway</html>",
			errText: "bundle_social: 502 Bad Gateway: <html>Bad gateway</html>"},
		{name: "hooked style JSON", status: 404, h: reply(404, `{"success":false,"message":"Account not found"}`), message: "Account not found"},
		{name: "empty body", status: 500, h: reply(500, ""), message: "", errText: "bundle_social: 500 Internal Server Error"},
		{name: "unknown status", status: 599, h: reply(599, `{"message":"?"}`), message: "?", errText: "bundle_social: status 599: ?"},
	}
	for _, tc := range cases {
		for _, p := range providers {
			t.Run(tc.name+"/"+p, func(t *testing.T) {
				f := setup(t, tc.h)
				err := call(t.Context(), f, p)
				e, ok := errors.AsType[*clients.APIError](err)
				if !ok {
					t.Fatalf("err = %v (%T), want *APIError", err, err)
				}
				if e.Provider != p || e.StatusCode != tc.status || e.Message != tc.message {
					t.Errorf("got provider %q status %d message %q, want %q %d %q", e.Provider, e.StatusCode, e.Message, p, tc.status, tc.message)
				}
				var issues []string
				for _, is := range e.Issues {
					issues = append(issues, is.String())
				}
				if fmt.Sprint(issues) != fmt.Sprint(tc.issues) {
					t.Errorf("issues = %q, want %q", issues, tc.issues)
				}
				d := e.RetryAfter - tc.retry
				if e.RetryAfterKnown != tc.retryKnown || d < -tc.slack || d > tc.slack {
					t.Errorf("RetryAfter = %v known=%v, want %v±%v known=%v", e.RetryAfter, e.RetryAfterKnown, tc.retry, tc.slack, tc.retryKnown)
				}
				if e.Header == nil || len(e.Body) == 0 && tc.message != "" {
					t.Errorf("Header %v / Body %q not kept", e.Header, e.Body)
				}
				if tc.errText != "" && p == "bundle_social" && err.Error() != tc.errText {
					t.Errorf("Error() = %q\nwant      %q", err.Error(), tc.errText)
				}
			})
		}
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	f := setup(t, reply(500, huge))
	for _, p := range providers {
		e, ok := errors.AsType[*clients.APIError](call(t.Context(), f, p))
		if !ok {
			t.Fatalf("%s: want *APIError", p)
		}
		if len(e.Body) != 64<<10 {
			t.Errorf("%s: kept %d bytes of the error body, want 64 KiB", p, len(e.Body))
		}
		if len(e.Message) > 600 {
			t.Errorf("%s: message is %d bytes; it must be bounded", p, len(e.Message))
		}
	}
}

func TestBad2xxIsInvalidResponse(t *testing.T) {
	big := `{"success":true,"socialAccountId":"sa","data":{"account":{}},"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	cases := []struct {
		name     string
		provider string
		h        http.HandlerFunc
		reason   string
	}{
		{"bundle not JSON", "bundle_social", reply(200, "<html>ok</html>"), "not JSON"},
		{"bundle empty 204", "bundle_social", reply(204, ""), "not JSON"},
		{"bundle truncated JSON", "bundle_social", reply(200, `{"success":true`), "not JSON"},
		{"bundle array", "bundle_social", reply(200, `[1]`), "socialAccountId"},
		{"bundle no socialAccountId", "bundle_social", reply(200, `{"success":true,"socialAccount":{"id":"x"}}`), "socialAccountId"},
		{"bundle empty socialAccountId", "bundle_social", reply(200, `{"success":true,"socialAccountId":""}`), "socialAccountId"},
		{"bundle success false", "bundle_social", reply(200, `{"success":false,"message":"nope","socialAccountId":"sa"}`), "success is false: nope"},
		{"bundle over 1 MiB", "bundle_social", reply(200, big), "over 1048576 bytes"},
		{"hooked not JSON", "hooked", reply(200, "OK"), "not JSON"},
		{"hooked no data", "hooked", reply(200, `{"success":true}`), "data.account"},
		{"hooked null account", "hooked", reply(200, `{"success":true,"data":{"account":null}}`), "data.account"},
		{"hooked data not an object", "hooked", reply(200, `{"success":true,"data":"x"}`), "data.account"},
		{"hooked success false", "hooked", reply(200, `{"success":false,"message":"quota","data":{"account":{}}}`), "success is false: quota"},
		{"hooked over 1 MiB", "hooked", reply(201, big), "over 1048576 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, tc.h)
			err := call(t.Context(), f, tc.provider)
			e, ok := errors.AsType[*clients.InvalidResponseError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *InvalidResponseError", err, err)
			}
			if e.Provider != tc.provider || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("got %q reason %q, want %q reason containing %q", e.Provider, e.Reason, tc.provider, tc.reason)
			}
			if len(e.Body) > 64<<10 {
				t.Errorf("kept %d bytes of the body", len(e.Body))
			}
		})
	}
}

// hijack answers with raw bytes and closes the connection, as a crashing
// upstream or a proxy cutting a stream would.
func hijack(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		_, _ = buf.WriteString(raw)
		_ = buf.Flush()
		_ = conn.Close()
	}
}

func TestNoResponseIsTransportError(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	cases := []struct {
		name        string
		h           http.HandlerFunc
		timeout     time.Duration
		wantTimeout bool
		wantStatus  int
	}{
		{name: "server hangs", h: hang, timeout: 300 * time.Millisecond, wantTimeout: true},
		{name: "headers then hang", timeout: 300 * time.Millisecond, wantTimeout: true, wantStatus: 200, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"success":`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
		{name: "closed before any response", h: hijack(""), timeout: 10 * time.Second},
		{name: "cut off mid-body", timeout: 10 * time.Second, wantStatus: 200,
			h: hijack("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"success\":true,")},
		{name: "garbage instead of HTTP", h: hijack("SSH-2.0-OpenSSH\r\n\r\n"), timeout: 10 * time.Second},
	}
	for _, tc := range cases {
		for _, p := range providers {
			t.Run(tc.name+"/"+p, func(t *testing.T) {
				f := setup(t, tc.h, clients.WithTimeout(tc.timeout))
				start := time.Now()
				err := call(t.Context(), f, p)
				elapsed := time.Since(start)
				e, ok := errors.AsType[*clients.TransportError](err)
				if !ok {
					t.Fatalf("err = %v (%T), want *TransportError", err, err)
				}
				if e.Provider != p || e.Timeout != tc.wantTimeout || e.StatusCode != tc.wantStatus {
					t.Errorf("got provider %q Timeout=%v StatusCode=%d, want %q %v %d (%v)", e.Provider, e.Timeout, e.StatusCode, p, tc.wantTimeout, tc.wantStatus, err)
				}
				if tc.wantTimeout {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("errors.Is(err, DeadlineExceeded) = false: %v", err)
					}
					// Generous upper bound: a busy machine is slow, but not
					// ten seconds slow on a 300ms timeout.
					if elapsed < tc.timeout || elapsed > tc.timeout+10*time.Second {
						t.Errorf("took %v with a %v timeout", elapsed, tc.timeout)
					}
				}
				if errors.Is(err, context.Canceled) {
					t.Errorf("looks like a cancellation: %v", err)
				}
				if e.Unwrap() == nil {
					t.Error("Unwrap() = nil")
				}
			})
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	// The key in the base URL stands for any way it could reach a wrapped
	// error's text: it must be redacted there too.
	c, err := clients.NewHooked(testKey, clients.WithBaseURL("http://"+addr+"/"+testKey), clients.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RefreshAccount(t.Context(), "a1")
	e, ok := errors.AsType[*clients.TransportError](err)
	if !ok || e.Timeout || e.StatusCode != 0 {
		t.Fatalf("err = %v (%T), want a TransportError without Timeout", err, err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("message %q does not say the connection was refused", err)
	}
	if strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("key not redacted: %q", err)
	}
}

func TestCallerCancellation(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			f := setup(t, func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-r.Context().Done()
			})
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-arrived
				cancel()
			}()
			err := call(ctx, f, p)
			e, ok := errors.AsType[*clients.TransportError](err)
			if !ok || e.Timeout || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v (%T), want a TransportError that Is context.Canceled, not a timeout", err, err)
			}
		})
	}
}

func TestAPIKeyNeverInErrorText(t *testing.T) {
	// An upstream that echoes the key back in every way it can.
	echo := func(status int, format string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprintf(w, format, r.Header.Get("x-api-key"))
		}
	}
	cases := map[string]http.HandlerFunc{
		"json message":         echo(401, `{"message":"bad key %s"}`),
		"issue message":        echo(400, `{"message":"x","issues":[{"message":"key %s","path":["k"]}]}`),
		"text body":            echo(403, `key %s is revoked`),
		"success false":        echo(200, `{"success":false,"message":"key %s"}`),
		"invalid 2xx no core":  echo(200, `{"success":true,"message":"%s"}`),
		"cut off":              hijack("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"),
		"garbage status line":  hijack("HTTP/1.1 abc " + testKey + "\r\n\r\n"),
		"hooked style message": echo(500, `{"success":false,"message":"%s"}`),
		"echoed in a header": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Echo", "key="+r.Header.Get("x-api-key"))
			w.WriteHeader(429)
		},
		"429 body": echo(429, `{"error":"slow down","key":"%s"}`),
	}
	for name, h := range cases {
		for _, p := range providers {
			t.Run(name+"/"+p, func(t *testing.T) {
				f := setup(t, h)
				err := call(t.Context(), f, p)
				if err == nil {
					t.Fatal("want an error")
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error text leaks the key: %q", err)
				}
				// What an error keeps of the response is redacted too: a
				// caller may log or store the body.
				var kept []string
				if e, ok := errors.AsType[*clients.APIError](err); ok {
					kept = append(kept, string(e.Body))
					for k, vs := range e.Header {
						kept = append(kept, k+": "+strings.Join(vs, ","))
					}
				}
				if e, ok := errors.AsType[*clients.InvalidResponseError](err); ok {
					kept = append(kept, string(e.Body))
				}
				for _, v := range kept {
					if strings.Contains(v, testKey) {
						t.Errorf("the error keeps the key: %q", v)
					}
				}
			})
		}
	}
}

// A server that is fine after a failure: the client holds no broken state.
func TestClientRecoversAfterFailure(t *testing.T) {
	n := 0
	f := setup(t, func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			hijack("")(w, r)
			return
		}
		reply(200, hookedOK)(w, r)
	})
	if err := call(t.Context(), f, "hooked"); err == nil {
		t.Fatal("first call: want an error")
	}
	if err := call(t.Context(), f, "hooked"); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

// An endless body shows the reads are bounded: reading it all would run
// into the timeout instead.
func TestEndlessBodyIsCutAtTheBound(t *testing.T) {
	endless := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			chunk := []byte(strings.Repeat("x", 32<<10))
			_, _ = w.Write([]byte(`{"pad":"`))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	for _, p := range providers {
		t.Run("2xx/"+p, func(t *testing.T) {
			f := setup(t, endless(200), clients.WithTimeout(20*time.Second))
			if _, ok := errors.AsType[*clients.InvalidResponseError](call(t.Context(), f, p)); !ok {
				t.Fatal("want *InvalidResponseError for a body over 1 MiB")
			}
		})
		t.Run("5xx/"+p, func(t *testing.T) {
			f := setup(t, endless(500), clients.WithTimeout(20*time.Second))
			e, ok := errors.AsType[*clients.APIError](call(t.Context(), f, p))
			if !ok || len(e.Body) != 64<<10 {
				t.Fatalf("want *APIError with 64 KiB of body")
			}
		})
	}
}

func mustAPIError(t *testing.T, err error) *clients.APIError {
	t.Helper()
	e, ok := errors.AsType[*clients.APIError](err)
	if !ok {
		t.Fatalf("err = %v (%T), want *APIError", err, err)
	}
	return e
}

// A redirect is not followed: net/http would carry x-api-key to the other
// host and turn the POST into a GET.
func TestRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	f := setup(t, reply(http.StatusFound, "", "Location", other.URL+"/steal"))
	for _, p := range providers {
		e := mustAPIError(t, call(t.Context(), f, p))
		if e.StatusCode != http.StatusFound || e.Header.Get("Location") == "" {
			t.Errorf("%s: got %d", p, e.StatusCode)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}
