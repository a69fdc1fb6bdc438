package opshttp

import (
	"log/slog"
	"net/http"
	"net/url"
)

// loopbackHost refuses requests whose Host header is not a loopback name
// or address. Without credentials the UI and pprof trust the network
// position of the caller (HTTP_ADDR is loopback), and a page on any web
// site can reach 127.0.0.1 through DNS rebinding: a name the attacker
// controls that resolves to 127.0.0.1 after the page has loaded. Such a
// request still carries the attacker's name in Host, so it is refused.
func loopbackHost(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if IsLoopback(r.Host) {
				next.ServeHTTP(w, r)
				return
			}
			log.Warn("refused a request for a non-loopback Host: the UI without credentials answers only localhost",
				slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
			plain(w, http.StatusMisdirectedRequest,
				"421 misdirected request: without MONITOR_USER and MONITOR_PASSWORD this page answers only requests to localhost, 127.0.0.1 or [::1]")
		})
	}
}

// sameOrigin refuses state-changing requests (any method but GET, HEAD and
// OPTIONS) that a browser sent from another site: a form on any page can
// POST to the UI, and the browser adds the operator's remembered basic
// auth credentials, which would pause queues or delete tasks in their
// name. Browsers mark such requests with Sec-Fetch-Site or, older ones,
// with an Origin that differs from Host. A request without either header
// does not come from a browser page (curl, scripts) and passes, unless its
// Referer names another host.
func sameOrigin(log *slog.Logger) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if cop.Check(r) == nil && !crossSiteReferer(r) {
				next.ServeHTTP(w, r)
				return
			}
			log.Warn("refused a cross-site request to the web UI",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("remote", r.RemoteAddr), slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
			plain(w, http.StatusForbidden,
				"403 forbidden: the web UI accepts changes only from its own pages (same origin); this request came from another site")
		})
	}
}

// crossSiteReferer reports a state-changing request that carries neither
// Sec-Fetch-Site nor Origin but a Referer from another host.
func crossSiteReferer(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return false
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return false
	}
	u, err := url.Parse(ref)
	return err != nil || u.Host != r.Host
}
