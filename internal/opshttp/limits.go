package opshttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits are the HTTP server's timeouts and header size. Each route gets
// its own time to answer (read and write deadlines set when its handler
// starts), so a slow client cannot hold a connection for long on the
// quick routes, while a 30 s CPU profile and the results long-poll still
// finish.
type Limits struct {
	// ReadHeader bounds receiving a request's headers (slowloris).
	ReadHeader time.Duration
	// Idle closes a keep-alive connection that sends nothing for this long.
	Idle time.Duration
	// MaxHeaderBytes bounds a request's headers; beyond it the server
	// answers 431.
	MaxHeaderBytes int
	// Page is each built-in route's time to read the body and write the
	// answer: the UI's pages and API calls, /metrics, /healthz, /readyz,
	// pprof's instant profiles.
	Page time.Duration
	// API is that time for the Extra routes (the enqueue API), whose
	// results long-poll waits up to a minute.
	API time.Duration
	// ProfileMax is the longest ?seconds= pprof's profile and trace take;
	// their deadline is that many seconds plus Page.
	ProfileMax time.Duration
}

// DefaultLimits are the limits New uses when Options.Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		ReadHeader:     10 * time.Second,
		Idle:           2 * time.Minute,
		MaxHeaderBytes: 64 << 10, // basic auth and a few cookies fit many times over
		Page:           30 * time.Second,
		API:            75 * time.Second, // a 60 s long-poll plus the time to write its answer
		ProfileMax:     5 * time.Minute,
	}
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.ReadHeader <= 0 {
		l.ReadHeader = d.ReadHeader
	}
	if l.Idle <= 0 {
		l.Idle = d.Idle
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.Page <= 0 {
		l.Page = d.Page
	}
	if l.API <= 0 {
		l.API = d.API
	}
	if l.ProfileMax <= 0 {
		l.ProfileMax = d.ProfileMax
	}
	return l
}

// NewHTTPServer returns an http.Server for Handler with the limits.
// WriteTimeout and ReadTimeout stay 0 there: every route sets its own
// deadlines instead (a server-wide WriteTimeout would also make pprof
// refuse any profile longer than it).
func (s *Server) NewHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.limits.ReadHeader,
		IdleTimeout:       s.limits.Idle,
		MaxHeaderBytes:    s.limits.MaxHeaderBytes,
	}
}

// deadline gives the handler d to read its request and write its answer.
func deadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setDeadlines(w, time.Now().Add(d))
		next.ServeHTTP(w, r)
	})
}

// profileDeadline is deadline for pprof's profile and trace, which take
// ?seconds= to collect before they write anything.
func profileDeadline(l Limits, defSeconds int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secs := defSeconds
		if v := r.FormValue("seconds"); v != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				plain(w, http.StatusBadRequest, "400 bad request: seconds must be a whole number ≥ 1")
				return
			}
			secs = n
		}
		if time.Duration(secs)*time.Second > l.ProfileMax {
			plain(w, http.StatusBadRequest, "400 bad request: seconds may be at most "+strconv.Itoa(int(l.ProfileMax/time.Second)))
			return
		}
		setDeadlines(w, time.Now().Add(time.Duration(secs)*time.Second+l.Page))
		next.ServeHTTP(w, r)
	})
}

// setDeadlines sets the connection's read and write deadlines. The read
// deadline matters even for a request without a body: net/http watches
// the idle connection for the client going away, and a read deadline
// passing there would end the handler's context early.
func setDeadlines(w http.ResponseWriter, t time.Time) {
	rc := http.NewResponseController(w)
	// ErrNotSupported only comes from writers that are not a connection
	// (httptest's recorder); there is nothing to bound then.
	_ = rc.SetReadDeadline(t)
	_ = rc.SetWriteDeadline(t)
}
