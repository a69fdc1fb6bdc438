package opshttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// MonitoringPath is where the web UI is served; asynqmon builds its links
// and API calls under it.
const MonitoringPath = "/monitoring"

// UpstreamsPath is where the upstreams status page is served.
const UpstreamsPath = "/upstreams"

// readyTimeout bounds a readiness check so a hung Redis makes /readyz
// answer 503 before the orchestrator's probe gives up on its own.
const readyTimeout = 2 * time.Second

// Options configures the HTTP surface.
type Options struct {
	// Addr is HTTP_ADDR. Only its host is used, to decide whether the UI
	// may be served without credentials (loopback addresses only).
	Addr string
	// RedisOpt is where asynqmon reads and changes queues. Required
	// unless the UI is off (no credentials and a non-loopback Addr).
	RedisOpt asynq.RedisConnOpt
	// MonitorUser and MonitorPassword turn on basic auth and the full UI
	// (pause queues, run and delete tasks). Set both or neither.
	MonitorUser, MonitorPassword string
	// Metrics is served at /metrics, without auth; nil leaves it out.
	Metrics http.Handler
	// Ready reports whether the worker is taking tasks; a non-nil error
	// makes /readyz answer 503 with the error's text, which must therefore
	// carry no secret. Nil means always ready.
	Ready func(ctx context.Context) error
	// PProf serves /debug/pprof/ (PPROF=1): behind basic auth when
	// credentials are set, since profiles and the command line reveal
	// internals; without them only on a loopback Addr, and never on
	// another (404 there, local requests included).
	PProf bool
	// PrometheusURL is the Prometheus the web UI's Metrics tab queries
	// (PROMETHEUS_URL); "" leaves the tab off.
	PrometheusURL string
	// Upstreams is the upstreams status page, served at UpstreamsPath
	// under the same rules as the web UI; nil leaves it out.
	Upstreams http.Handler
	// Extra mounts more handlers (e.g. the enqueue API at "/v1/") by
	// http.ServeMux pattern. They bring their own auth.
	Extra map[string]http.Handler
	// Logger receives one line describing what is served; nil discards.
	Logger *slog.Logger
	// Limits are the server's timeouts and header size; zero fields take
	// DefaultLimits.
	Limits Limits
	// Cancel, when set with credentials, answers the web UI's delete and
	// archive of a waiting task and cancel of a running one, on
	// CancelQueues, by cancelling it (uicancel.go): it ends with one
	// cancelled result. Nil leaves those routes to asynqmon.
	Cancel       CancelFunc
	CancelQueues []string
}

// Server is the assembled HTTP surface. It serves nothing by itself: hand
// Handler to an http.Server.
type Server struct {
	handler   http.Handler
	limits    Limits
	mon       *asynqmon.HTTPHandler // nil when the UI is off
	insp      *asynq.Inspector      // the UI's cancels; nil without them
	closeOnce sync.Once
	closeErr  error
}

// UI modes, as logged.
const (
	uiOff      = "off"
	uiReadOnly = "read-only"
	uiAuth     = "basic-auth"
)

// New checks opt and builds the routes. It fails when only one of the
// monitor credentials is set, when the UI needs Redis and RedisOpt is nil,
// and when an Extra pattern is invalid or clashes with a built-in route.
func New(opt Options) (*Server, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opt.MonitorUser != "" && opt.MonitorPassword == "":
		return nil, errors.New("MONITOR_PASSWORD is not set but MONITOR_USER is: set both to protect the web UI, or neither")
	case opt.MonitorUser == "" && opt.MonitorPassword != "":
		return nil, errors.New("MONITOR_USER is not set but MONITOR_PASSWORD is: set both to protect the web UI, or neither")
	}
	auth := opt.MonitorUser != ""
	loopback := IsLoopback(opt.Addr)

	mode := uiOff
	switch {
	case auth:
		mode = uiAuth
	case loopback:
		mode = uiReadOnly
	}

	s := &Server{limits: opt.Limits.withDefaults()}
	if mode != uiOff {
		if opt.RedisOpt == nil {
			return nil, errors.New("opshttp: RedisOpt is required to serve the web UI")
		}
		s.mon = asynqmon.New(asynqmon.Options{
			RootPath:          MonitoringPath,
			RedisConnOpt:      opt.RedisOpt,
			ReadOnly:          mode == uiReadOnly,
			PrometheusAddress: opt.PrometheusURL,
		})
	}

	// Who may reach the UI and pprof: the holder of the credentials, or
	// without them a browser on this machine that asked for a loopback
	// name. Either way, changes only from the UI's own pages.
	who := loopbackHost(log)
	if auth {
		who = basicAuth(opt.MonitorUser, opt.MonitorPassword, log)
	}
	cross := sameOrigin(log)
	guard := func(h http.Handler) http.Handler { return who(cross(h)) }
	pprofOn := opt.PProf && (auth || loopback)

	var ui http.Handler
	if s.mon != nil {
		ui = s.mon
		if mode == uiAuth && opt.Cancel != nil {
			s.insp = asynq.NewInspector(opt.RedisOpt)
			uc := &uiCancel{cancel: opt.Cancel, queues: opt.CancelQueues, insp: s.insp, log: log}
			ui = uc.wrap(s.mon)
		}
	}

	mux := http.NewServeMux()
	if err := mountAll(mux, opt, ui, guard, pprofOn, s.limits); err != nil {
		s.Close()
		return nil, err
	}
	// Every request starts with the quick routes' deadline, 404s included;
	// the long routes extend it.
	s.handler = deadline(s.limits.Page, mux)

	log.Info("ops http",
		slog.String("addr", opt.Addr),
		slog.String("monitoring", mode),
		slog.Bool("metrics", opt.Metrics != nil),
		slog.Bool("pprof", pprofOn))
	if opt.PProf && !pprofOn {
		log.Warn("PPROF=1 is ignored: pprof is not served on a non-loopback HTTP_ADDR without MONITOR_USER and MONITOR_PASSWORD",
			slog.String("addr", opt.Addr))
	}
	return s, nil
}

// mountAll registers every route, turning ServeMux's panics on a bad or
// clashing Extra pattern into an error for New.
func mountAll(mux *http.ServeMux, opt Options, mon http.Handler, guard func(http.Handler) http.Handler, pprofOn bool, lim Limits) (err error) {
	pattern := ""
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("opshttp: route %q: %v", pattern, r)
		}
	}()
	handle := func(p string, h http.Handler) {
		pattern = p
		mux.Handle(p, h)
	}

	handle("GET /healthz", http.HandlerFunc(healthz))
	handle("GET /readyz", readyz(opt.Ready))
	if opt.Metrics != nil {
		handle("GET /metrics", opt.Metrics)
	}
	if mon != nil {
		// Every method passes through: the full UI posts to
		// .../archived_tasks/{id}:run and friends, and read-only mode is
		// enforced by asynqmon itself. Its deletes, archives and cancels of
		// refreshq's tasks arrive here as cancels (uicancel.go).
		var ui http.Handler = mon
		if opt.Upstreams != nil {
			ui = withUpstreamsLink(mon)
		}
		handle(MonitoringPath+"/", guard(ui))
	} else {
		handle(MonitoringPath+"/", http.HandlerFunc(uiOffNotFound))
	}
	if opt.Upstreams != nil {
		// The page shows key ids, cooldowns and upstream error messages:
		// the same people as the web UI may see it.
		if mon != nil {
			handle("GET "+UpstreamsPath+"/", guard(opt.Upstreams))
		} else {
			handle(UpstreamsPath+"/", http.HandlerFunc(uiOffNotFound))
		}
	}
	if pprofOn {
		// Named profiles take ?seconds= too (a heap delta), 0 by default.
		handle("/debug/pprof/", guard(profileDeadline(lim, 0, http.HandlerFunc(pprof.Index))))
		handle("/debug/pprof/cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
		// The CPU profile takes 30 s unless ?seconds= says otherwise, the
		// trace 1 s.
		handle("/debug/pprof/profile", guard(profileDeadline(lim, 30, http.HandlerFunc(pprof.Profile))))
		handle("/debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
		handle("/debug/pprof/trace", guard(profileDeadline(lim, 1, http.HandlerFunc(pprof.Trace))))
	}
	for p, h := range opt.Extra {
		handle(p, deadline(lim.API, h))
	}
	return nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases asynqmon's Redis connections. Call it after the
// http.Server serving Handler has shut down; it is safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.mon != nil {
			s.closeErr = s.mon.Close()
		}
		if s.insp != nil {
			s.closeErr = errors.Join(s.closeErr, s.insp.Close())
		}
	})
	return s.closeErr
}

// IsLoopback reports whether addr (host:port, or a bare host) names only
// the local machine: 127.0.0.0/8, ::1 or localhost. An empty host (":8080")
// listens on every interface, so it is not loopback; other names are not
// resolved, so they are not either.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	plain(w, http.StatusOK, "ok")
}

func readyz(ready func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				plain(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		plain(w, http.StatusOK, "ready")
	})
}

func uiOffNotFound(w http.ResponseWriter, _ *http.Request) {
	// Say why, so an operator who exposed HTTP_ADDR does not go hunting
	// for a broken route; it tells an outsider nothing they can use.
	plain(w, http.StatusNotFound,
		"404 not found: the web UI is off on a non-loopback HTTP_ADDR without MONITOR_USER and MONITOR_PASSWORD")
}

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// basicAuth guards a handler with one user and password. Both are compared
// as SHA-256 digests in constant time, so neither their content nor their
// length leaks through timing.
func basicAuth(user, password string, log *slog.Logger) func(http.Handler) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
			userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
			passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
			if ok && userOK&passOK == 1 {
				next.ServeHTTP(w, r)
				return
			}
			if ok {
				// Only failed attempts are worth a line: a browser's first
				// request carries no credentials. The user name is left out
				// too, since people type passwords into it.
				log.Warn("monitoring: wrong credentials",
					slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="refreshq monitoring", charset="UTF-8"`)
			plain(w, http.StatusUnauthorized, "401 unauthorized: this page needs the MONITOR_USER and MONITOR_PASSWORD credentials")
		})
	}
}

// upstreamsLink is added to the web UI's page: asynqmon has no place for
// links of its own, and an operator looking at stuck queues wants the
// upstreams page one click away.
const upstreamsLink = `<a href="` + UpstreamsPath + `/" id="refreshq-upstreams-link" ` +
	`style="position:fixed;right:16px;bottom:12px;z-index:2000;padding:6px 12px;border-radius:4px;` +
	`background:#1d2330;color:#fff;font:13px system-ui,sans-serif;text-decoration:none">Upstreams status →</a>`

// withUpstreamsLink adds upstreamsLink to the web UI's HTML page. Only
// asynqmon's page is buffered (its API answers JSON under /api/, its assets
// have file extensions), and that page is a few KiB.
func withUpstreamsLink(ui http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || strings.HasPrefix(r.URL.Path, MonitoringPath+"/api/") || path.Ext(r.URL.Path) != "" {
			ui.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: w.Header(), code: http.StatusOK}
		ui.ServeHTTP(buf, r)
		body := buf.body.Bytes()
		if w.Header().Get("Content-Type") == "" {
			// asynqmon leaves its page's type to net/http's sniffing.
			w.Header().Set("Content-Type", http.DetectContentType(body))
		}
		if buf.code == http.StatusOK && strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			body = bytes.Replace(body, []byte("</body>"), []byte(upstreamsLink+"</body>"), 1)
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(buf.code)
		_, _ = w.Write(body)
	})
}

// bufferedResponse holds a response's status and body until it is
// complete; its headers are the real writer's.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
