package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/results"
)

// Defaults the contract names.
const (
	DefaultBundleSocialBaseURL = "https://api.bundle.social"
	DefaultHookedBaseURL       = "https://api.hooked.so"
	DefaultBundleSocialRate    = "5/1s,20/10s,100/1m" // bundle.social's documented per-user limits
	DefaultHookedRate          = "off"
	DefaultMaxRetries          = 10
	DefaultRetryInitial        = time.Second
	DefaultRetryMaxInterval    = 5 * time.Minute
	DefaultUpstreamTimeout     = 30 * time.Second
	DefaultTaskDeadline        = 24 * time.Hour
	DefaultShutdownGrace       = 25 * time.Second
	DefaultHTTPAddr            = "127.0.0.1:8080"

	// DefaultResultsMaxAge matches how long a task's result can be looked
	// up by id (results.DefaultIndexTTL): older entries cannot be found by
	// id anyway, and an unbounded stream fills Redis.
	DefaultResultsMaxAge = 7 * 24 * time.Hour

	// DefaultConcurrency suits I/O-bound work: a worker spends almost all of
	// a task waiting on the upstream, so it keeps many in flight; the
	// fleet-wide budget, not this, is what protects the upstream.
	DefaultConcurrency = 50
)

// Provider is one upstream's settings.
type Provider struct {
	Name      string // provider id: bundle_social, hooked
	KeyVar    string // the variable that holds its API key, for messages
	APIKey    string // empty: the provider is not served
	BaseURL   string
	Budget    ratelimit.Budget
	DailyCap  int // 0: none
	rateInput string
}

// Worker is the worker's whole configuration.
type Worker struct {
	Demo        bool
	MonitorOnly bool

	RedisURL string

	BundleSocial Provider
	Hooked       Provider

	MaxRetries       int
	RetryInitial     time.Duration
	RetryMaxInterval time.Duration
	UpstreamTimeout  time.Duration
	TaskDeadline     time.Duration
	ShutdownGrace    time.Duration

	// BreakerThreshold and BreakerOpenFor tune every provider's circuit
	// breaker (ratelimit.Options).
	BreakerThreshold int
	BreakerOpenFor   time.Duration
	// RateMargin is added to every budget window (ratelimit.Options.Margin):
	// the delivery jitter the budget still holds under at the upstream.
	// 0 means ratelimit's default, negative none.
	RateMargin time.Duration

	ResultsStream string
	// ResultsMaxLen and ResultsMaxAge bound the results stream (0: no
	// bound); entries a consumer group still needs are never trimmed.
	ResultsMaxLen int64
	ResultsMaxAge time.Duration
	Concurrency   int
	Queues        Queues

	HTTPAddr string
	// HTTPAddrDefault is true when neither HTTP_ADDR nor -http-addr was
	// given: then a taken port is not worth refusing to start over.
	HTTPAddrDefault bool
	MonitorUser     string
	MonitorPassword string
	EnqueueToken    string
	ScheduleFile    string
	PProf           bool

	LogFormat string // json, text or auto (text on a terminal)
	LogLevel  string
}

// UsageError is bad configuration or bad flags: the process exits 2.
type UsageError struct{ Err error }

// Error is the wrapped error's text: it already says what to do.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *UsageError) Unwrap() error { return e.Err }

// LoadWorker reads flags from args and the environment through getenv and
// validates everything, reporting every problem at once.
func LoadWorker(args []string, getenv func(string) string, stderr io.Writer) (Worker, error) {
	var c Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.Demo, "demo", false, "run the whole system with nothing installed: embedded Redis (unless REDIS_URL is set) and the built-in upstream simulator")
	fs.Bool("healthcheck", false, "ask the worker on HTTP_ADDR for /healthz and exit 0 if it answers 200 (for container health checks; use it alone)")
	fs.BoolVar(&c.MonitorOnly, "monitor-only", false, "serve the web UI, metrics and health on HTTP_ADDR but run no tasks (one UI for a fleet)")
	httpAddr := fs.String("http-addr", "", "address for the UI, metrics and health (overrides HTTP_ADDR)")
	concurrency := fs.Int("concurrency", 0, "tasks in flight (overrides WORKER_CONCURRENCY)")
	logFormat := fs.String("log-format", "", "json, text or auto (overrides LOG_FORMAT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: worker [-demo] [-monitor-only] [flags]\n\nRuns refresh tasks until SIGINT/SIGTERM. Configuration comes from the environment (see README); flags override it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, &UsageError{err}
	}
	if fs.NArg() > 0 {
		return c, &UsageError{fmt.Errorf("unexpected argument %q; the worker takes only flags (see -h)", fs.Arg(0))}
	}

	var errs []error
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name string, def time.Duration) time.Duration {
		s := env(name, "")
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a positive duration; write e.g. %s", name, s, def))
			return def
		}
		return d
	}
	integer := func(name string, def, min int) int {
		s := env(name, "")
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number ≥ %d", name, s, min))
			return def
		}
		return n
	}

	c.RedisURL = env("REDIS_URL", "")
	if c.RedisURL == "" && !c.Demo {
		errs = append(errs, errors.New("REDIS_URL is not set; point it at Redis ≥ 6.2, e.g. REDIS_URL=redis://127.0.0.1:6379, or run `worker -demo` to try refreshq with an embedded Redis"))
	}
	if c.RedisURL != "" {
		if err := checkRedisURL(c.RedisURL); err != nil {
			errs = append(errs, err)
		}
	}

	provider := func(name, prefix, defBase, defRate string) Provider {
		p := Provider{Name: name, KeyVar: prefix + "_API_KEY"}
		p.APIKey = env(prefix+"_API_KEY", "")
		p.BaseURL = env(prefix+"_BASE_URL", defBase)
		if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s_BASE_URL=%q is not an http(s) URL; write e.g. %s", prefix, p.BaseURL, defBase))
		}
		p.rateInput = env(prefix+"_RATE", defRate)
		b, err := ratelimit.ParseBudget(p.rateInput)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_RATE: %v", prefix, err))
		}
		p.Budget = b
		p.DailyCap = integer(prefix+"_DAILY_CAP", 0, 1)
		return p
	}
	c.BundleSocial = provider("bundle_social", "BUNDLE_SOCIAL", DefaultBundleSocialBaseURL, DefaultBundleSocialRate)
	c.Hooked = provider("hooked", "HOOKED", DefaultHookedBaseURL, DefaultHookedRate)

	c.MaxRetries = integer("MAX_RETRIES", DefaultMaxRetries, 0)
	c.RetryInitial = dur("RETRY_INITIAL", DefaultRetryInitial)
	c.RetryMaxInterval = dur("RETRY_MAX_INTERVAL", DefaultRetryMaxInterval)
	if c.RetryMaxInterval < c.RetryInitial {
		errs = append(errs, fmt.Errorf("RETRY_MAX_INTERVAL (%s) is shorter than RETRY_INITIAL (%s); make it at least as long", c.RetryMaxInterval, c.RetryInitial))
	}
	c.UpstreamTimeout = dur("UPSTREAM_TIMEOUT", DefaultUpstreamTimeout)
	c.TaskDeadline = dur("TASK_DEADLINE", DefaultTaskDeadline)
	c.ShutdownGrace = dur("SHUTDOWN_GRACE", DefaultShutdownGrace)
	c.BreakerThreshold = integer("BREAKER_THRESHOLD", ratelimit.DefaultBreakerThreshold, 1)
	c.BreakerOpenFor = dur("BREAKER_OPEN_FOR", ratelimit.DefaultBreakerOpenFor)
	c.RateMargin = ratelimit.DefaultMargin
	if v := env("RATE_MARGIN", ""); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d < 0:
			errs = append(errs, fmt.Errorf("RATE_MARGIN=%q is not a duration ≥ 0; write e.g. %s", v, ratelimit.DefaultMargin))
		case d == 0:
			c.RateMargin = -1 // none
		default:
			c.RateMargin = d
		}
	}
	c.ResultsStream = env("RESULTS_STREAM", results.DefaultStream)
	c.ResultsMaxLen = int64(integer("RESULTS_MAX_LEN", 0, 0))
	c.ResultsMaxAge = DefaultResultsMaxAge
	switch v := env("RESULTS_MAX_AGE", ""); v {
	case "":
	case "0", "off":
		c.ResultsMaxAge = 0
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("RESULTS_MAX_AGE=%q is not a positive duration; write e.g. 168h, or off to keep results forever", v))
		}
		c.ResultsMaxAge = d
	}

	c.Concurrency = integer("WORKER_CONCURRENCY", DefaultConcurrency, 1)
	if *concurrency != 0 {
		if *concurrency < 1 {
			errs = append(errs, fmt.Errorf("-concurrency=%d: use a whole number ≥ 1", *concurrency))
		}
		c.Concurrency = *concurrency
	}
	q, err := ParseQueues(env("QUEUES", DefaultQueues))
	if err != nil {
		errs = append(errs, err)
	}
	c.Queues = q

	c.HTTPAddr = env("HTTP_ADDR", DefaultHTTPAddr)
	c.HTTPAddrDefault = env("HTTP_ADDR", "") == "" && *httpAddr == ""
	if *httpAddr != "" {
		c.HTTPAddr = *httpAddr
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR=%q is not host:port; write e.g. %s", c.HTTPAddr, DefaultHTTPAddr))
	}
	c.MonitorUser = getenv("MONITOR_USER")
	c.MonitorPassword = getenv("MONITOR_PASSWORD")
	if (c.MonitorUser == "") != (c.MonitorPassword == "") {
		missing := "MONITOR_PASSWORD"
		if c.MonitorUser == "" {
			missing = "MONITOR_USER"
		}
		errs = append(errs, fmt.Errorf("%s is not set: set both MONITOR_USER and MONITOR_PASSWORD for a UI with basic auth, or neither for a read-only UI on a loopback address", missing))
	}
	c.EnqueueToken = getenv("ENQUEUE_TOKEN")
	c.ScheduleFile = env("SCHEDULE_FILE", "")
	switch v := env("PPROF", "0"); v {
	case "1", "true":
		c.PProf = true
	case "0", "false":
	default:
		errs = append(errs, fmt.Errorf("PPROF=%q: use 1 to serve /debug/pprof/ or 0 (default)", v))
	}
	c.LogFormat = env("LOG_FORMAT", "auto")
	if *logFormat != "" {
		c.LogFormat = *logFormat
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT=%q: use json, text or auto", c.LogFormat))
	}
	c.LogLevel = env("LOG_LEVEL", "info")
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: use debug, info, warn or error", c.LogLevel))
	}
	if len(errs) > 0 {
		return c, &UsageError{errors.Join(errs...)}
	}
	return c, nil
}

// checkRedisURL accepts asynq's URI forms and says which it takes
// otherwise. The URL itself is never echoed: it may hold a password.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("REDIS_URL is not a URL; write e.g. redis://:PASSWORD@host:6379/0")
	}
	switch u.Scheme {
	case "redis", "rediss", "redis-socket", "redis-sentinel":
		return nil
	}
	return fmt.Errorf("REDIS_URL has scheme %q; use redis://, rediss://, redis-socket:// or redis-sentinel://", u.Scheme)
}
