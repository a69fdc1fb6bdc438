package clients

import (
	"net/http"
	"runtime/debug"
	"time"
)

// DefaultTimeout bounds one request, from sending it to reading the last
// byte of the response, unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// version may be set at link time with
// -ldflags "-X github.com/refreshq/refreshq/internal/clients.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

// DefaultUserAgent is sent when WithUserAgent is not given, so upstream
// operators can tell refreshq's traffic apart.
func DefaultUserAgent() string {
	v := version
	if v == "" {
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if v == "" {
		v = "dev"
	}
	return "refreshq/" + v
}

// Option configures a client.
type Option func(*options)

type options struct {
	baseURL    string
	httpClient *http.Client
	userAgent  string
	timeout    time.Duration
}

// WithBaseURL replaces the API's base URL. It must be absolute http or
// https and may carry a path prefix (http://gw.internal/bundle), which every
// call keeps.
func WithBaseURL(u string) Option { return func(o *options) { o.baseURL = u } }

// WithHTTPClient sends requests through c's transport, timeout and jar
// instead of http.DefaultTransport. Redirects are never followed, whatever
// c says, so the API key cannot travel to another host. nil keeps the
// default.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithUserAgent replaces DefaultUserAgent. An empty string keeps the default.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// WithTimeout bounds each request, response body included (default
// DefaultTimeout). It must be positive; the caller's context still applies.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }
