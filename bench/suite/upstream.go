package suite

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/refreshq/refreshq/internal/simulator"
)

// upstream is the local stand-in for hooked.so: every request gets the same
// 200 body after a fixed latency. It is simpler than the simulator on
// purpose: the simulator records every call (memory that grows with the run)
// and takes a lock per request, costs that would be charged to whichever
// variant happens to run against it.
type upstream struct {
	srv  *http.Server
	ln   net.Listener
	URL  string
	body []byte
}

// newUpstream serves on 127.0.0.1 with the given latency. The body is the
// simulator's own hooked.so success body, so the full worker's response
// validation sees what it would in the demo.
func newUpstream(latency time.Duration) (*upstream, error) {
	body, err := hookedBody()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("upstream listen: %w", err)
	}
	u := &upstream{ln: ln, URL: "http://" + ln.Addr().String(), body: body}
	u.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if latency > 0 {
			time.Sleep(latency)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(u.body)
	})}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

func (u *upstream) Close() { _ = u.srv.Close() }

// hookedBody asks the simulator once for a hooked.so success body.
func hookedBody() ([]byte, error) {
	sim := simulator.New(simulator.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/social/account/bench-account/refresh", nil)
	req.Header.Set("x-api-key", "bench")
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("simulator answered %d to a hooked refresh: %s", rec.Code, rec.Body)
	}
	return bytes.Clone(rec.Body.Bytes()), nil
}
