package enqueueapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refreshq/refreshq/client"
)

// Option configures the API.
type Option func(*api)

// WithMetrics registers the API's metrics (failed authentications) with reg.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(a *api) { a.reg = reg }
}

// New returns the API's handler. Requests without "Authorization: Bearer
// token" are answered 401; an empty token refuses every request. A nil
// logger logs nothing.
func New(c *client.Client, token string, logger *slog.Logger, opts ...Option) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &api{c: c, hasToken: token != "", tokenSum: sha256.Sum256([]byte(token)), log: logger}
	for _, o := range opts {
		o(a)
	}
	a.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refreshq_enqueue_auth_failures_total",
		Help: "Requests to the enqueue API refused for their bearer token, by reason (missing, malformed, wrong).",
	}, []string{"reason"})
	if a.reg != nil {
		if err := a.reg.Register(a.authFailures); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				a.authFailures = are.ExistingCollector.(*prometheus.CounterVec)
			}
		}
	}
	for _, r := range []string{authMissing, authMalformed, authWrong} {
		a.authFailures.WithLabelValues(r)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/refreshes", a.enqueue)
	mux.HandleFunc("GET /v1/refreshes/{task_id}", a.result)
	mux.HandleFunc("DELETE /v1/refreshes/{task_id}", a.cancel)
	return a.auth(mux)
}

type api struct {
	c            *client.Client
	hasToken     bool
	tokenSum     [sha256.Size]byte
	log          *slog.Logger
	reg          prometheus.Registerer
	authFailures *prometheus.CounterVec
}

// Problem is one entry of an error response: what is wrong and, for a
// refresh of the body, which one (index) and which field.
type Problem struct {
	Index   *int   `json:"index,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error is the message, with the field when there is one.
func (p *Problem) Error() string {
	if p.Field != "" {
		return p.Field + ": " + p.Message
	}
	return p.Message
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	// Errors lists at most MaxListedErrors problems, the first ones.
	Errors []Problem `json:"errors"`
	// ErrorCount is how many problems there were in all.
	ErrorCount int `json:"error_count"`
}

// Reasons a request is refused for its token, as the metric labels them.
const (
	authMissing   = "missing"
	authMalformed = "malformed"
	authWrong     = "wrong"
)

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := a.check(r.Header.Get("Authorization"))
		if reason == "" {
			next.ServeHTTP(w, r)
			return
		}
		a.authFailures.WithLabelValues(reason).Inc()
		// Never the header itself: a wrong token is often a right one
		// for something else.
		a.log.Warn("enqueue API: authentication failed", "reason", reason, "remote_addr", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer realm="refreshq"`)
		writeErrors(w, http.StatusUnauthorized, Problem{Message: "missing or wrong bearer token: send Authorization: Bearer <ENQUEUE_TOKEN>"})
	})
}

// check returns why an Authorization header is refused, "" when it is
// accepted. Both tokens are hashed first so the comparison takes the same
// time whatever the presented token's length.
func (a *api) check(header string) string {
	if header == "" {
		return authMissing
	}
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return authMalformed
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 || !a.hasToken {
		return authWrong
	}
	return ""
}

// problems collects a request's problems, keeping the first
// MaxListedErrors and counting the rest.
type problems struct {
	list  []Problem
	count int
}

func (ps *problems) add(p Problem) {
	ps.count++
	if len(ps.list) < MaxListedErrors {
		ps.list = append(ps.list, p)
	}
}

func writeErrors(w http.ResponseWriter, status int, ps ...Problem) {
	writeJSON(w, status, ErrorResponse{Errors: ps, ErrorCount: len(ps)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages quote <ENQUEUE_TOKEN>; this is not HTML
	_ = enc.Encode(v)
}
