package simulator

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refreshq/refreshq/tasks"
)

// Routes, relative to Options.Prefix, as the seeds document them.
const (
	bundlePath       = "/api/v1/social-account/profile-refresh"
	hookedPathPrefix = "/v1/social/account/"
	hookedPathSuffix = "/refresh"
)

// maxRequestBody bounds what the simulator reads of a request body.
const maxRequestBody = 1 << 20

// Window is one rate limit: at most N requests in any span of Per.
type Window struct {
	N   int
	Per time.Duration
}

// Options configure a Simulator. The zero value answers every well-formed,
// authenticated request with a 200 at once.
type Options struct {
	// Prefix is a path prefix both routes are served under, e.g. "/sim",
	// so clients' base URLs carry a path as real gateways do. To serve the
	// providers under different prefixes, mount one Simulator twice with
	// http.StripPrefix.
	Prefix string

	// APIKey and APIKeys are the accepted x-api-key values; a request with
	// another key gets 403. With both empty, any non-empty key is accepted.
	APIKey  string
	APIKeys []string

	// Latency delays every answer, plus a uniform random [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration

	// Rand drives jitter and random outcomes; nil means one seeded with
	// Seed, so runs are repeatable.
	Rand *rand.Rand
	Seed int64

	// P429, P500 and P404 are the probabilities of those random outcomes
	// for requests that reach step 6 (see the package doc).
	P429, P500, P404 float64

	// RateLimit, when set, is enforced per provider and API key as sliding
	// windows over admitted requests (a rejected request does not count).
	RateLimit []Window

	// Script, when it returns non-nil, decides the answer to an
	// authenticated, valid, admitted request. It is called without locks
	// held and may be called concurrently.
	Script func(c Call) *Reply

	// Now is the clock for Call.At, rate-limit windows, Date headers and
	// timestamps in bodies; nil means time.Now.
	Now func() time.Time
}

// Reply is a scripted answer.
type Reply struct {
	// Status defaults to 200.
	Status int
	// Header is added to the response; Content-Type defaults to JSON.
	Header http.Header
	// Body defaults to what the simulator would send for Status: the
	// success body for a 2xx, the provider's error body otherwise.
	Body []byte
	// Delay is waited before answering, on top of Options.Latency.
	Delay time.Duration
	// Hang never answers: the handler waits until the client gives up (or
	// Close is called) and then drops the connection.
	Hang bool
}

// Call is one request the simulator received.
type Call struct {
	At time.Time
	// Provider is "bundle_social" or "hooked", empty for an unknown route.
	Provider string
	// Subject is TEAM/PLATFORM for bundle.social (as sent, even if
	// invalid) and the unescaped account id for hooked.so.
	Subject string
	APIKey  string
	// Status is the status answered, or about to be when the client gave
	// up during a delay; 0 for a Hang.
	Status int
	// N counts calls for this provider and subject, from 1, including this
	// one.
	N int
	// Method, Path (as escaped on the wire) and Body (bundle.social's
	// request body) are what the client sent.
	Method string
	Path   string
	Body   []byte
}

// Simulator serves both upstream APIs. It is safe for concurrent use.
type Simulator struct {
	opts   Options
	prefix string
	now    func() time.Time

	done      chan struct{}
	closeOnce sync.Once

	mu      sync.Mutex
	rnd     *rand.Rand
	calls   []Call
	gen     int // bumped by Reset, so an in-flight request cannot update a forgotten call
	counts  map[string]int
	windows map[string][]time.Time
}

// New returns a Simulator. It panics on a RateLimit window that is not
// positive, a mistake in the test or demo that sets it.
func New(opts Options) *Simulator {
	for _, w := range opts.RateLimit {
		if w.N < 1 || w.Per <= 0 {
			panic(fmt.Sprintf("simulator: invalid rate limit window %d/%v", w.N, w.Per))
		}
	}
	s := &Simulator{
		opts:    opts,
		prefix:  normalizePrefix(opts.Prefix),
		now:     opts.Now,
		done:    make(chan struct{}),
		rnd:     opts.Rand,
		counts:  map[string]int{},
		windows: map[string][]time.Time{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rnd == nil {
		seed := uint64(opts.Seed)
		s.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	}
	return s
}

func normalizePrefix(p string) string {
	p = strings.TrimRight(p, "/")
	if p != "" && !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// Close releases requests held by Hang or a delay, so a server with clients
// that never time out can still shut down. The simulator keeps answering.
func (s *Simulator) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// Calls returns every request received since New or Reset, in order.
func (s *Simulator) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsFor returns the calls whose Subject is subject, in order.
func (s *Simulator) CallsFor(subject string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Subject == subject {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets all calls, per-subject counts and rate-limit windows.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.gen++
	clear(s.counts)
	clear(s.windows)
}

// answer is what the simulator decided to send.
type answer struct {
	status int
	header http.Header
	body   []byte
	delay  time.Duration
	hang   bool
}

// ServeHTTP answers one request as the upstream would.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	req := s.parse(w, r)
	gen, idx, call := s.record(req, now)

	a := s.decide(req, call, now)

	s.mu.Lock()
	if s.gen == gen && !a.hang {
		s.calls[idx].Status = a.status
	}
	delay := a.delay + s.opts.Latency
	if s.opts.Jitter > 0 {
		delay += time.Duration(s.rnd.Int64N(int64(s.opts.Jitter)))
	}
	s.mu.Unlock()

	if a.hang {
		s.wait(r, -1)
		// Dropping the connection is what a hung upstream looks like once
		// someone gives up.
		panic(http.ErrAbortHandler)
	}
	if !s.wait(r, delay) {
		// The client is gone; there is no one to answer.
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	// Our own clock, so an HTTP-date Retry-After reads the same against
	// Date however long the delay was, and a fake Options.Now is honoured.
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	for k, vs := range a.header {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// wait sleeps for d (forever when d < 0), cut short by Close, and reports
// false when the client left first.
func (s *Simulator) wait(r *http.Request, d time.Duration) bool {
	if d == 0 {
		return r.Context().Err() == nil
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-s.done:
	case <-r.Context().Done():
		return false
	}
	return true
}

// request is what routing and parsing found.
type request struct {
	provider string
	subject  string
	apiKey   string
	method   string
	path     string
	body     []byte
	routed   bool

	// bundle.social only
	teamID, platform string
	badJSON          bool
	issues           []issue
}

func (s *Simulator) parse(w http.ResponseWriter, r *http.Request) *request {
	path := r.URL.EscapedPath()
	req := &request{apiKey: r.Header.Get("x-api-key"), method: r.Method, path: path}
	rest, ok := strings.CutPrefix(path, s.prefix)
	if !ok || r.Method != http.MethodPost {
		return req
	}
	if rest == bundlePath {
		req.provider, req.routed = tasks.ProviderBundleSocial, true
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		req.body = body
		if err != nil {
			req.badJSON = true
		} else {
			req.teamID, req.platform, req.badJSON, req.issues = validateBundle(body)
		}
		req.subject = req.teamID + "/" + req.platform
		return req
	}
	if seg, ok := strings.CutPrefix(rest, hookedPathPrefix); ok {
		seg, ok = strings.CutSuffix(seg, hookedPathSuffix)
		if ok && seg != "" && !strings.Contains(seg, "/") {
			if id, err := url.PathUnescape(seg); err == nil {
				req.provider, req.routed, req.subject = tasks.ProviderHooked, true, id
			}
		}
	}
	return req
}

func (s *Simulator) record(req *request, now time.Time) (gen, idx int, c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := req.provider + "\x00" + req.subject
	s.counts[key]++
	c = Call{
		At:       now,
		Provider: req.provider,
		Subject:  req.subject,
		APIKey:   req.apiKey,
		N:        s.counts[key],
		Method:   req.method,
		Path:     req.path,
		Body:     req.body,
	}
	s.calls = append(s.calls, c)
	return s.gen, len(s.calls) - 1, c
}

func (s *Simulator) decide(req *request, call Call, now time.Time) answer {
	if !req.routed {
		return answer{status: http.StatusNotFound, body: mustJSON(bundleError{
			StatusCode: http.StatusNotFound,
			Message:    fmt.Sprintf("Cannot %s %s", req.method, req.path),
		})}
	}
	if req.apiKey == "" {
		return s.errorAnswer(req, http.StatusUnauthorized, "Unauthorized: the x-api-key header is missing")
	}
	if !s.accepted(req.apiKey) {
		return s.errorAnswer(req, http.StatusForbidden, "Forbidden: the API key is not valid")
	}
	if req.badJSON {
		return s.errorAnswer(req, http.StatusBadRequest, "Request body is not valid JSON")
	}
	if len(req.issues) > 0 {
		return answer{status: http.StatusBadRequest, body: mustJSON(bundleError{
			StatusCode: http.StatusBadRequest,
			Message:    "Validation failed",
			Issues:     req.issues,
		})}
	}
	if wait, ok := s.admit(req.provider+"\x00"+req.apiKey, now); !ok {
		a := s.errorAnswer(req, http.StatusTooManyRequests, "Too many requests, slow down")
		a.header = http.Header{"Retry-After": {strconv.Itoa(ceilSeconds(wait))}}
		return a
	}
	if s.opts.Script != nil {
		if rep := s.opts.Script(call); rep != nil {
			return s.scripted(req, call, rep, now)
		}
	}
	if a, ok := s.random(req, now); ok {
		return a
	}
	return answer{status: http.StatusOK, body: s.success(req, call.N, now)}
}

func (s *Simulator) accepted(key string) bool {
	if s.opts.APIKey == "" && len(s.opts.APIKeys) == 0 {
		return true
	}
	return key == s.opts.APIKey || slices.Contains(s.opts.APIKeys, key)
}

// admit applies the sliding windows to one more request from key, and
// returns how long until it would be admitted when it is not.
func (s *Simulator) admit(key string, now time.Time) (time.Duration, bool) {
	if len(s.opts.RateLimit) == 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var longest time.Duration
	for _, w := range s.opts.RateLimit {
		longest = max(longest, w.Per)
	}
	ts := s.windows[key]
	// Times are appended in order; drop those outside every window.
	drop := 0
	for drop < len(ts) && now.Sub(ts[drop]) >= longest {
		drop++
	}
	ts = ts[drop:]
	var wait time.Duration
	for _, w := range s.opts.RateLimit {
		in := 0
		for i := len(ts) - 1; i >= 0 && now.Sub(ts[i]) < w.Per; i-- {
			in++
		}
		if in >= w.N {
			// Admitted once the request N places from the end leaves the
			// window.
			wait = max(wait, ts[len(ts)-w.N].Add(w.Per).Sub(now))
		}
	}
	if wait > 0 {
		s.windows[key] = ts
		return wait, false
	}
	s.windows[key] = append(ts, now)
	return 0, true
}

func ceilSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

func (s *Simulator) scripted(req *request, call Call, rep *Reply, now time.Time) answer {
	a := answer{status: rep.Status, header: rep.Header, body: rep.Body, delay: rep.Delay, hang: rep.Hang}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.body == nil {
		if a.status >= 200 && a.status < 300 {
			a.body = s.success(req, call.N, now)
		} else {
			a.body = s.errorAnswer(req, a.status, defaultMessage(req.provider, a.status)).body
		}
	}
	return a
}

func (s *Simulator) random(req *request, now time.Time) (answer, bool) {
	p429, p500, p404 := s.opts.P429, s.opts.P500, s.opts.P404
	if p429+p500+p404 <= 0 {
		return answer{}, false
	}
	s.mu.Lock()
	u := s.rnd.Float64()
	secs := 1 + s.rnd.IntN(3)
	asDate := s.rnd.IntN(3) == 0
	s.mu.Unlock()
	switch {
	case u < p429:
		a := s.errorAnswer(req, http.StatusTooManyRequests, defaultMessage(req.provider, http.StatusTooManyRequests))
		v := strconv.Itoa(secs)
		if asDate {
			v = now.Add(time.Duration(secs) * time.Second).UTC().Format(http.TimeFormat)
		}
		a.header = http.Header{"Retry-After": {v}}
		return a, true
	case u < p429+p500:
		return s.errorAnswer(req, http.StatusInternalServerError, defaultMessage(req.provider, http.StatusInternalServerError)), true
	case u < p429+p500+p404:
		return s.errorAnswer(req, http.StatusNotFound, defaultMessage(req.provider, http.StatusNotFound)), true
	}
	return answer{}, false
}
