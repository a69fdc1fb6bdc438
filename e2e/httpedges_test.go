package e2e

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/refreshq/refreshq/internal/probe"
	"github.com/refreshq/refreshq/internal/simulator"
)

// TestHTTPEdges drives the worker binary as an attacker would: a foreign
// Host at the credential-less UI (DNS rebinding), a cross-site POST at the
// UI with credentials, and pprof switched on at 0.0.0.0 without them.
func TestHTTPEdges(t *testing.T) {
	t.Parallel()
	s := NewStack(t, simulator.Options{})
	t.Run("foreign Host at the loopback UI", func(t *testing.T) {
		w := s.StartWorker(map[string]string{"PPROF": "1"})
		for _, path := range []string{"/monitoring/", "/monitoring/api/queues", "/debug/pprof/"} {
			if code := probe.Request(t, "GET", "http://"+w.HTTP+path, "rebind.attacker.example", nil); code != http.StatusMisdirectedRequest {
				t.Errorf("GET %s with a foreign Host = %d, want 421", path, code)
			}
			if code := probe.Request(t, "GET", "http://"+w.HTTP+path, "", nil); code != 200 {
				t.Errorf("GET %s from this machine = %d, want 200", path, code)
			}
		}
	})

	t.Run("cross-site POST at the UI with credentials", func(t *testing.T) {
		w := s.StartWorker(map[string]string{"MONITOR_USER": "ops", "MONITOR_PASSWORD": "ui-pw"})
		pause := "http://" + w.HTTP + "/monitoring/api/queues/default:pause"
		post := func(header map[string]string) int {
			req, _ := http.NewRequest("POST", pause, strings.NewReader(""))
			req.SetBasicAuth("ops", "ui-pw")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return probe.Status(t, req, header)
		}
		if code := post(map[string]string{"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"}); code != http.StatusForbidden {
			t.Errorf("cross-site POST = %d, want 403", code)
		}
		if n, _ := s.RDB.Exists(t.Context(), "asynq:{default}:paused").Result(); n != 0 {
			t.Fatal("a cross-site POST paused the queue")
		}
		if code := post(map[string]string{"Origin": "http://" + w.HTTP, "Sec-Fetch-Site": "same-origin"}); code >= 300 {
			t.Errorf("the UI's own POST = %d, want it to pause the queue", code)
		}
		if n, _ := s.RDB.Exists(t.Context(), "asynq:{default}:paused").Result(); n != 1 {
			t.Error("the UI's own POST did not pause the queue")
		}
	})

	t.Run("pprof on 0.0.0.0 without credentials", func(t *testing.T) {
		w := s.StartWorker(map[string]string{"PPROF": "1", "HTTP_ADDR": "0.0.0.0:0"})
		_, port, _ := net.SplitHostPort(w.HTTP)
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
			if code := probe.Request(t, "GET", "http://127.0.0.1:"+port+path, "", nil); code != 404 {
				t.Errorf("GET %s from 127.0.0.1 = %d, want 404", path, code)
			}
		}
		if code := probe.Request(t, "GET", "http://127.0.0.1:"+port+"/metrics", "", nil); code != 200 {
			t.Errorf("/metrics = %d, want 200", code)
		}
	})
}
