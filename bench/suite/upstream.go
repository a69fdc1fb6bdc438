package suite

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/refreshq/refreshq/internal/simulator"
)

// bundleRefreshPath is bundle.social's profile refresh endpoint.
const bundleRefreshPath = "/api/v1/social-account/profile-refresh"

// bundleBody is a 200 answer to a profile refresh as bundle.social
// documents it: every field of the schema present, the account filled in
// the way a connected TikTok account is, and the refresh quota far from
// its limit, so the worker's quota watch has nothing to do. It is 880
// bytes, the size of a real answer.
const bundleBody = `{"success":true,"message":"Social account profile info refreshed","socialAccountId":"clx8k2m9p0001qz7h3v5t6w8y",` +
	`"socialAccount":{"id":"clx8k2m9p0001qz7h3v5t6w8y","type":"TIKTOK","teamId":"clx8k1a2b0000qz7hteam0001",` +
	`"username":"acme_official","displayName":"Acme Official Store","avatarUrl":"https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068/7d3f9c2a1b4e5f60a1b2c3d.jpeg",` +
	`"externalId":"6823048113029430278","userUsername":"acme_official","userDisplayName":"Acme Official","userId":"6823048113029430278",` +
	`"channels":null,"mastodonServerId":null,"instagramConnectionMethod":null,"twitterSubType":null,"isTiktokBusinessAccount":true,` +
	`"disconnectedCheckTryAt":null,"deleteOn":null,"createdAt":"2025-03-14T09:26:53.589Z","updatedAt":"2026-11-29T12:00:00.000Z","deletedAt":null},` +
	`"refreshedAt":"2026-11-29T12:00:00.000Z","limit":100000,"used":12,"remaining":99988,"windowSeconds":86400}`

// upstreamOptions shape the stand-in's answers.
type upstreamOptions struct {
	latency time.Duration
	// limit, when > 0, is the upstream's own rate limit: more than limit
	// 200s in any window get a 429, as a real API answers a client that
	// overruns its quota.
	limit  int
	window time.Duration
}

// upstream is the local stand-in for bundle.social: every request gets the
// same 200 body after a fixed latency, or a 429 past its limit. It is
// simpler than the simulator on purpose: the simulator records every call
// (memory that grows with the run) and takes a lock per request, costs that
// would be charged to whichever variant happens to run against it.
type upstream struct {
	srv     *http.Server
	ln      net.Listener
	URL     string
	opt     upstreamOptions
	ok      atomic.Int64
	tooMany atomic.Int64

	mu sync.Mutex
	// admitted holds the times of the last limit 200s, oldest first, and
	// all of them while recording, for the budget use of a scenario.
	admitted []time.Time
	record   bool
	log      []time.Time
}

// newUpstream serves on 127.0.0.1.
func newUpstream(opt upstreamOptions) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln, URL: "http://" + ln.Addr().String(), opt: opt}
	body := []byte(bundleBody)
	hooked, err := hookedBody()
	if err != nil {
		ln.Close()
		return nil, err
	}
	u.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.latency > 0 {
			time.Sleep(opt.latency)
		}
		w.Header().Set("Content-Type", "application/json")
		if !u.admit(time.Now()) {
			u.tooMany.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"statusCode":429,"message":"Too many requests, slow down"}`))
			return
		}
		u.ok.Add(1)
		b := body
		if r.URL.Path != bundleRefreshPath {
			b = hooked
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	})}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// admit applies the limit to a request answered at now.
func (u *upstream) admit(now time.Time) bool {
	if u.opt.limit <= 0 {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.admitted) == u.opt.limit {
		if now.Sub(u.admitted[0]) < u.opt.window {
			return false
		}
		u.admitted = u.admitted[1:]
	}
	u.admitted = append(u.admitted, now)
	if u.record {
		u.log = append(u.log, now)
	}
	return true
}

// startRecording starts a log of the times of 200s; answered returns it.
func (u *upstream) startRecording() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.record, u.log = true, nil
}

func (u *upstream) answered() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.log...)
}

func (u *upstream) Close() { _ = u.srv.Close() }

// hookedBody asks the simulator once for a hooked.so success body (549
// bytes), for -task hooked.
func hookedBody() ([]byte, error) {
	sim := simulator.New(simulator.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, hookedRefreshPath("bench-account"), nil)
	req.Header.Set("x-api-key", "bench")
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("simulator answered %d to a hooked refresh: %s", rec.Code, rec.Body)
	}
	return bytes.Clone(rec.Body.Bytes()), nil
}

// hookedRefreshPath is hooked.so's account refresh endpoint.
func hookedRefreshPath(account string) string {
	return "/v1/social/account/" + url.PathEscape(account) + "/refresh"
}
