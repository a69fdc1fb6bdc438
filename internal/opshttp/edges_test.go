package opshttp_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/redistest"
)

// TestCrossSiteWritesRefused: with credentials set, a browser that
// remembers them would add them to a form POST from any site. Only the
// UI's own pages may change anything; reads stay open to the credentials.
func TestCrossSiteWritesRefused(t *testing.T) {
	ropt := redistest.ConnOpt(t)
	insp := asynq.NewInspector(ropt)
	defer insp.Close()
	s := newServer(t, opshttp.Options{Addr: "0.0.0.0:8080", RedisOpt: ropt, MonitorUser: "ops", MonitorPassword: "pw"})

	tests := []struct {
		name    string
		header  map[string]string
		allowed bool
	}{
		{"form on another site (Sec-Fetch-Site)", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, false},
		{"another port of the same host (same-site is not same-origin)", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9999"}, false},
		{"older browser: Origin of another site", map[string]string{"Origin": "https://evil.example"}, false},
		{"sandboxed or privacy-stripped page: Origin null", map[string]string{"Origin": "null"}, false},
		{"no Origin but a Referer from another site", map[string]string{"Referer": "https://evil.example/page"}, false},
		{"the UI's own page (Sec-Fetch-Site)", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"}, true},
		{"the UI's own page, older browser (Origin)", map[string]string{"Origin": "http://127.0.0.1:8080"}, true},
		{"not a browser (curl with credentials)", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := redistest.Queue(t, ropt)
			redistest.Enqueue(t, ropt, q, 2)
			send := func(path string) response {
				req := httptest.NewRequest("POST", "/monitoring/api/queues/"+q+path, nil)
				req.Host = "127.0.0.1:8080"
				req.SetBasicAuth("ops", "pw")
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				s.Handler().ServeHTTP(rec, req)
				return response{rec.Code, rec.Body.String(), rec.Result().Header}
			}
			pause := send(":pause")
			archive := send("/pending_tasks:archive_all")
			info, err := insp.GetQueueInfo(q)
			if err != nil {
				t.Fatal(err)
			}
			if tt.allowed {
				if pause.code >= 300 || archive.code >= 300 || !info.Paused || info.Archived != 2 {
					t.Errorf("same-origin writes: pause %d, archive %d; queue paused=%v archived=%d, want both done",
						pause.code, archive.code, info.Paused, info.Archived)
				}
				return
			}
			for _, r := range []response{pause, archive} {
				if r.code != http.StatusForbidden || !strings.Contains(r.body, "same origin") {
					t.Errorf("cross-site write = %d %q, want 403 saying why", r.code, r.body)
				}
			}
			if info.Paused || info.Archived != 0 || info.Pending != 2 {
				t.Errorf("after refused writes: paused=%v archived=%d pending=%d; want the queue untouched", info.Paused, info.Archived, info.Pending)
			}
		})
	}

	t.Run("cross-site reads still answer (the browser keeps them from the other site)", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/monitoring/api/queues", nil)
		req.Host = "127.0.0.1:8080"
		req.SetBasicAuth("ops", "pw")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("GET = %d, want 200", rec.Code)
		}
	})
}

// TestLoopbackHost: without credentials the UI and pprof trust that the
// caller is on this machine. A web page can reach 127.0.0.1 through DNS
// rebinding, but its requests carry the attacker's name in Host.
func TestLoopbackHost(t *testing.T) {
	// A Redis of the test's own: the UI API lists every queue, and on a
	// shared Redis another package's test may delete one mid-listing.
	ropt := asynq.RedisClientOpt{Addr: redistest.Mini(t).Addr()}
	noCreds := newServer(t, opshttp.Options{Addr: "127.0.0.1:8080", RedisOpt: ropt, Metrics: fakeMetrics, PProf: true})
	withCreds := newServer(t, opshttp.Options{Addr: "127.0.0.1:8080", RedisOpt: ropt, Metrics: fakeMetrics, PProf: true, MonitorUser: "ops", MonitorPassword: "pw"})

	tests := []struct {
		name     string
		s        *opshttp.Server
		host     string
		path     string
		user     string
		wantCode int
	}{
		{"rebound name: UI refused", noCreds, "rebind.evil.example:8080", "/monitoring/", "", 421},
		{"rebound name: UI API refused", noCreds, "rebind.evil.example:8080", "/monitoring/api/queues", "", 421},
		{"rebound name: pprof refused", noCreds, "rebind.evil.example:8080", "/debug/pprof/cmdline", "", 421},
		{"a name that starts like loopback", noCreds, "127.0.0.1.evil.example:8080", "/monitoring/", "", 421},
		{"a LAN address", noCreds, "192.168.1.20:8080", "/monitoring/", "", 421},
		{"no Host at all", noCreds, "", "/monitoring/", "", 421},
		{"rebound name: metrics still served", noCreds, "rebind.evil.example:8080", "/metrics", "", 200},
		{"rebound name: health still served", noCreds, "rebind.evil.example:8080", "/healthz", "", 200},
		{"127.0.0.1", noCreds, "127.0.0.1:8080", "/monitoring/", "", 200},
		{"localhost", noCreds, "localhost:8080", "/monitoring/api/queues", "", 200},
		{"[::1]", noCreds, "[::1]:8080", "/debug/pprof/cmdline", "", 200},
		{"credentials set: any Host, credentials decide", withCreds, "refreshq.example.com", "/monitoring/", "ops", 200},
		{"credentials set: any Host, none given", withCreds, "refreshq.example.com", "/monitoring/", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.path, nil)
			req.Host = tt.host
			if tt.user != "" {
				req.SetBasicAuth(tt.user, "pw")
			}
			rec := httptest.NewRecorder()
			tt.s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("GET %s with Host %q = %d %.120q, want %d", tt.path, tt.host, rec.Code, rec.Body.String(), tt.wantCode)
			}
		})
	}
}

// TestPProfNeverOnPublicAddrWithoutCredentials: PPROF=1 on 0.0.0.0 without
// credentials would hand heap dumps and the command line to anyone who can
// reach the port; it is not served at all, local requests included.
func TestPProfNeverOnPublicAddrWithoutCredentials(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "10.1.2.3:8080"} {
		t.Run(addr, func(t *testing.T) {
			s := newServer(t, opshttp.Options{Addr: addr, Metrics: fakeMetrics, PProf: true})
			srv := newHTTPTest(t, s) // a real 127.0.0.1 client and Host
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/symbol", "/debug/pprof/trace?seconds=1", "/debug/pprof/heap"} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 404 {
					t.Errorf("GET %s from 127.0.0.1 = %d, want 404", path, resp.StatusCode)
				}
			}
		})
	}
}

// serveLimits serves s on 127.0.0.1 with the server NewHTTPServer builds.
func serveLimits(t *testing.T, s *opshttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.NewHTTPServer()
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		hs.Close()
	})
	return ln.Addr().String()
}

// TestServerLimits: every route has a deadline suited to it, headers are
// bounded, and idle or slow connections are closed.
func TestServerLimits(t *testing.T) {
	lim := opshttp.Limits{ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond, MaxHeaderBytes: 8 << 10, Page: 500 * time.Millisecond, API: 3 * time.Second, ProfileMax: 2 * time.Second}
	// A check that ignores its context, as a hung dependency may: the
	// route's write deadline is what cuts it off. (Were it to return when
	// the read deadline cancels its context, it would write at the very
	// instant the write deadline passes, and on a loaded machine the
	// write can beat the deadline's timer.)
	slowReady := func(context.Context) error {
		time.Sleep(1500 * time.Millisecond)
		return nil
	}
	longPoll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(1500 * time.Millisecond): // longer than Page, within API
			io.WriteString(w, "result")
		case <-r.Context().Done():
			t.Errorf("the long-poll's context ended early: %v", r.Context().Err())
		}
	})
	s := newServer(t, opshttp.Options{Addr: "127.0.0.1:0", Metrics: fakeMetrics, Ready: slowReady, PProf: true, Limits: lim,
		Extra: map[string]http.Handler{"GET /v1/refreshes/{id}": longPoll}, RedisOpt: redistest.ConnOpt(t)})
	addr := serveLimits(t, s)
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, hdr map[string]string) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		// Each subtest on a connection of its own: a connection whose
		// deadline passed must not carry into the next subtest.
		req.Close = true
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	t.Run("a quick route that overruns its deadline is cut off", func(t *testing.T) {
		code, body, err := get("/readyz", nil)
		if err == nil {
			t.Errorf("/readyz taking 1.5 s with a 500 ms deadline answered %d %q", code, body)
		}
	})
	t.Run("the API's long-poll outlives the quick routes' deadline", func(t *testing.T) {
		if code, body, err := get("/v1/refreshes/abc?wait=60s", nil); err != nil || code != 200 || body != "result" {
			t.Errorf("long-poll = %d %q %v, want 200 result", code, body, err)
		}
	})
	t.Run("a CPU profile longer than the quick routes' deadline", func(t *testing.T) {
		code, body, err := get("/debug/pprof/profile?seconds=1", nil)
		if err != nil || code != 200 || len(body) == 0 {
			t.Errorf("1 s profile = %d (%d bytes) %v, want 200 with a profile", code, len(body), err)
		}
	})
	t.Run("a profile longer than the maximum is refused", func(t *testing.T) {
		if code, body, _ := get("/debug/pprof/profile?seconds=3", nil); code != 400 || !strings.Contains(body, "at most 2") {
			t.Errorf("3 s profile with a 2 s maximum = %d %q, want 400", code, body)
		}
	})
	t.Run("the UI's pages", func(t *testing.T) {
		if code, body, err := get("/monitoring/", nil); err != nil || code != 200 || !strings.Contains(body, "Asynq") {
			t.Errorf("/monitoring/ = %d %v", code, err)
		}
	})
	t.Run("oversized headers: 431", func(t *testing.T) {
		code, _, err := get("/healthz", map[string]string{"X-Junk": strings.Repeat("a", 16<<10)})
		if err != nil || code != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("16 KiB header = %d %v, want 431", code, err)
		}
	})
	t.Run("headers sent too slowly: connection closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
		if !closedWithin(conn, 3*time.Second) {
			t.Error("a connection that never finished its headers was kept open")
		}
	})
	t.Run("idle keep-alive connection: closed", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !closedWithin(readerConn{conn, br}, 3*time.Second) {
			t.Error("an idle keep-alive connection was kept open")
		}
	})
}

type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// closedWithin reports whether the server closes conn within d.
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if err == nil {
		return true // EOF
	}
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true // reset
}
