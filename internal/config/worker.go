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

	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisconn"
)

// Defaults the documentation names that are the worker's own. Those of the
// refresh handler's settings are the handlers package's (and the task
// deadline the tasks package's), so a worker and a server that mounts the
// handler agree.
const (
	DefaultShutdownGrace = 25 * time.Second
	DefaultHTTPAddr      = "127.0.0.1:8080"

	// DefaultResultsMaxAge matches how long a task's result can be looked
	// up by id (results.DefaultIndexTTL): older entries cannot be found by
	// id anyway, and an unbounded stream fills Redis.
	DefaultResultsMaxAge = 7 * 24 * time.Hour

	// DefaultResultsMaxUnackedAge gives a consumer group that stopped
	// reading weeks to come back before its unread entries go.
	DefaultResultsMaxUnackedAge = 30 * 24 * time.Hour

	// DefaultConcurrency suits I/O-bound work: a worker spends almost all of
	// a task waiting on the upstream, so it keeps many in flight; the
	// fleet-wide budget, not this, is what protects the upstream.
	DefaultConcurrency = 50
)

// Provider is one upstream's settings.
type Provider struct {
	Name     string // provider id, one of tasks.Providers()
	KeyVar   string // the variable that holds its API key, for messages
	APIKey   string // empty: the provider is not served
	BaseURL  string
	Budget   ratelimit.Budget
	DailyCap int // 0: none
}

// Worker is the worker's whole configuration.
type Worker struct {
	Demo        bool
	MonitorOnly bool
	// DemoTraces: with -demo, every span is printed as JSON on stdout.
	DemoTraces bool

	RedisURL string
	// RedisSentinelUsername, RedisSentinelPassword and RedisCACert go
	// with RedisURL; RedisSettings puts them together.
	RedisSentinelUsername, RedisSentinelPassword, RedisCACert string

	// Providers are the upstreams' settings, one for each of
	// tasks.Providers(), in that order.
	Providers []Provider

	MaxRetries       int
	RetryInitial     time.Duration
	RetryMaxInterval time.Duration
	UpstreamTimeout  time.Duration
	TaskDeadline     time.Duration
	RetryAfterMax    time.Duration // the longest pause one upstream hint sets
	ShutdownGrace    time.Duration

	// BreakerThreshold and BreakerOpenFor tune every provider's circuit
	// breaker (ratelimit.Options).
	BreakerThreshold int
	BreakerOpenFor   time.Duration
	// RateMargin is added to every budget window (ratelimit.Options.Margin):
	// the delivery jitter the budget still holds under at the upstream.
	// 0 means ratelimit's default, negative none.
	RateMargin time.Duration
	// LaneReserve is the share of a budget kept for lower-priority queues
	// while they have tasks waiting (quota.Options.Reserve).
	LaneReserve float64

	ResultsStream string
	// ResultsMaxLen and ResultsMaxAge bound the results stream (0: no
	// bound); entries a consumer group still needs are never trimmed.
	ResultsMaxLen int64
	ResultsMaxAge time.Duration
	// ResultsMaxUnackedAge is the age past which entries are trimmed even
	// if a consumer group still needs them (0: never).
	ResultsMaxUnackedAge time.Duration
	Concurrency          int
	Queues               Queues

	HTTPAddr string
	// HTTPAddrDefault is true when neither HTTP_ADDR nor -http-addr was
	// given: then a taken port is not worth refusing to start over.
	HTTPAddrDefault bool
	MonitorUser     string
	MonitorPassword string
	EnqueueToken    string
	ScheduleFile    string
	PProf           bool
	// QueueMetrics exports the queue-level gauges read from Redis.
	QueueMetrics bool
	// PrometheusURL is the Prometheus the web UI's Metrics tab queries; ""
	// turns the tab off.
	PrometheusURL string

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
// validates everything, reporting every problem at once. It reads only the
// variables in Settings; each section's parser reads its part.
func LoadWorker(args []string, getenv func(string) string, stderr io.Writer) (Worker, error) {
	var c Worker
	r := &reader{getenv: getenv, flags: map[string]string{}}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.Demo, "demo", false, "run the whole system with nothing installed: embedded Redis (unless REDIS_URL is set) and the built-in upstream simulator")
	fs.Bool("version", false, "print the version and exit")
	fs.BoolVar(&c.DemoTraces, "traces", false, "with -demo: print every OpenTelemetry span as JSON on stdout (elsewhere, the OTEL_* variables decide)")
	fs.BoolVar(&c.MonitorOnly, "monitor-only", false, "serve the web UI, metrics, health and the enqueue API on HTTP_ADDR but run no tasks (one UI for a fleet)")
	for _, s := range Settings {
		if s.Flag != "" {
			fs.Func(s.Flag, "overrides "+s.Name+": "+plain(s.Meaning), func(v string) error {
				r.flags[s.Flag] = v
				return nil
			})
		}
	}
	fs.Usage = func() {
		out := fs.Output()
		// cmd/worker answers -healthcheck before flags are parsed: it is
		// only valid alone, so it is listed here rather than registered.
		fmt.Fprintf(out, "Usage: worker [-demo] [-monitor-only] [flags]\n       worker -healthcheck\n\nRuns refresh tasks until SIGINT/SIGTERM. Configuration comes from the environment; flags override it.\n-healthcheck asks the worker on HTTP_ADDR for /healthz and exits 0 if it answers 200 (for container health checks; use it alone).\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEnvironment (variable, default; a secret may instead be read from the file VAR_FILE names):\n")
		PrintSettings(out)
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

	c.parseRedis(r)
	c.parseProviders(r)
	c.parseRetries(r)
	c.parseLimiter(r)
	c.parseResults(r)
	c.parseProcessing(r)
	c.parseHTTP(r)
	c.parseLogging(r)
	if len(r.errs) > 0 {
		return c, &UsageError{errors.Join(r.errs...)}
	}
	return c, nil
}

// parseRedis reads REDIS_URL and the settings that go with it.
func (c *Worker) parseRedis(r *reader) {
	c.RedisURL = r.str("REDIS_URL")
	c.RedisSentinelUsername, c.RedisSentinelPassword, c.RedisCACert = readRedisExtras(r)
	switch {
	case c.RedisURL == "" && !c.Demo:
		r.fail("REDIS_URL is not set; point it at Redis ≥ 6.2, e.g. REDIS_URL=redis://127.0.0.1:6379, or run `worker -demo` to try refreshq with an embedded Redis")
	case c.RedisURL != "":
		if _, err := c.RedisSettings().Options(); err != nil {
			r.errs = append(r.errs, err)
		}
	}
}

// RedisSettings is how to reach Redis.
func (c Worker) RedisSettings() redisconn.Settings {
	return redisconn.Settings{URL: c.RedisURL, SentinelUsername: c.RedisSentinelUsername,
		SentinelPassword: c.RedisSentinelPassword, CACert: c.RedisCACert}
}

// readRedisExtras reads the settings that go with REDIS_URL.
func readRedisExtras(r *reader) (sentinelUser, sentinelPassword, caCert string) {
	return r.str("REDIS_SENTINEL_USERNAME"), r.str("REDIS_SENTINEL_PASSWORD"), r.str("REDIS_CA_CERT")
}

// parseProviders reads each upstream's variables.
func (c *Worker) parseProviders(r *reader) {
	c.Providers = nil
	for _, api := range clients.Upstreams() {
		c.Providers = append(c.Providers, parseProvider(r, api.Provider))
	}
}

// parseProvider reads one upstream's variables, named EnvPrefix(name)_*.
func parseProvider(r *reader, name string) Provider {
	prefix := EnvPrefix(name)
	p := Provider{Name: name, KeyVar: prefix + "_API_KEY"}
	p.APIKey = r.str(prefix + "_API_KEY")
	p.BaseURL = r.str(prefix + "_BASE_URL")
	if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s, _ := lookupSetting(prefix + "_BASE_URL")
		r.fail("%s_BASE_URL=%q is not an http(s) URL; write e.g. %s", prefix, p.BaseURL, s.Default)
	}
	b, err := ratelimit.ParseBudget(r.str(prefix + "_RATE"))
	if err != nil {
		r.fail("%s_RATE: %v", prefix, err)
	}
	p.Budget = b
	p.DailyCap = r.integer(prefix+"_DAILY_CAP", 1)
	return p
}

// parseRetries reads the retry policy and the timeouts.
func (c *Worker) parseRetries(r *reader) {
	c.MaxRetries = r.integer("MAX_RETRIES", 0)
	c.RetryInitial = r.duration("RETRY_INITIAL")
	c.RetryMaxInterval = r.duration("RETRY_MAX_INTERVAL")
	if c.RetryMaxInterval < c.RetryInitial {
		r.fail("RETRY_MAX_INTERVAL (%s) is shorter than RETRY_INITIAL (%s); make it at least as long", c.RetryMaxInterval, c.RetryInitial)
	}
	c.UpstreamTimeout = r.duration("UPSTREAM_TIMEOUT")
	c.TaskDeadline = r.duration("TASK_DEADLINE")
	c.RetryAfterMax = r.duration("RETRY_AFTER_MAX")
	c.ShutdownGrace = r.duration("SHUTDOWN_GRACE")
}

// parseLimiter reads the breaker and the budgets' margin.
func (c *Worker) parseLimiter(r *reader) {
	c.BreakerThreshold = r.integer("BREAKER_THRESHOLD", 1)
	c.BreakerOpenFor = r.duration("BREAKER_OPEN_FOR")
	v, src := r.strFrom("RATE_MARGIN")
	d, err := time.ParseDuration(v)
	switch {
	case err != nil || d < 0:
		r.fail("%s=%q is not a duration ≥ 0; write e.g. %s", src, v, durText(ratelimit.DefaultMargin))
		c.RateMargin = ratelimit.DefaultMargin
	case d == 0:
		c.RateMargin = -1 // none
	default:
		c.RateMargin = d
	}
	v, src = r.strFrom("LANE_RESERVE")
	share, err := ParseShare(v)
	if err != nil {
		r.fail("%s=%q: %v", src, v, err)
		share = DefaultLaneReserve
	}
	c.LaneReserve = share
}

// DefaultLaneReserve is LANE_RESERVE's default: 10% of a budget.
const DefaultLaneReserve = 0.10

// ParseShare reads a share of a budget as a percentage ("10%") or a
// fraction ("0.1"), at least 0 and below 100%.
func ParseShare(v string) (float64, error) {
	s := strings.TrimSpace(v)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f >= 1 || f != f {
		return 0, errors.New("want a share from 0% to below 100%, e.g. 10% or 0.1")
	}
	return f, nil
}

// parseResults reads the results stream and its bounds.
func (c *Worker) parseResults(r *reader) {
	c.ResultsStream = r.str("RESULTS_STREAM")
	c.ResultsMaxLen = int64(r.integer("RESULTS_MAX_LEN", 0))
	c.ResultsMaxAge = r.ageOrOff("RESULTS_MAX_AGE", "168h", "to keep results forever")
	c.ResultsMaxUnackedAge = r.ageOrOff("RESULTS_MAX_UNACKED_AGE", "720h", "to keep what a consumer group has not acknowledged forever")
}

// ageOrOff reads a positive duration, or 0 for "off" (or "0").
func (r *reader) ageOrOff(name, example, offMeans string) time.Duration {
	switch v := r.str(name); v {
	case "0", "off":
		return 0
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			r.fail("%s=%q is not a positive duration; write e.g. %s, or off %s", name, v, example, offMeans)
		}
		return d
	}
}

// parseProcessing reads what the worker runs: concurrency, queues and the
// schedule.
func (c *Worker) parseProcessing(r *reader) {
	c.Concurrency = r.integer("WORKER_CONCURRENCY", 1)
	q, err := ParseQueues(r.str("QUEUES"))
	if err != nil {
		r.errs = append(r.errs, err)
	}
	c.Queues = q
	c.ScheduleFile = r.str("SCHEDULE_FILE")
}

// parseHTTP reads what HTTP_ADDR serves and who may see it.
func (c *Worker) parseHTTP(r *reader) {
	c.HTTPAddr = r.str("HTTP_ADDR")
	c.HTTPAddrDefault = !r.isSet("HTTP_ADDR")
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		r.fail("HTTP_ADDR=%q is not host:port; write e.g. %s", c.HTTPAddr, DefaultHTTPAddr)
	}
	// Credentials are taken as given: a space may be part of them.
	c.MonitorUser, _ = r.raw("MONITOR_USER")
	c.MonitorPassword, _ = r.raw("MONITOR_PASSWORD")
	if (c.MonitorUser == "") != (c.MonitorPassword == "") {
		missing := "MONITOR_PASSWORD"
		if c.MonitorUser == "" {
			missing = "MONITOR_USER"
		}
		r.fail("%s is not set: set both MONITOR_USER and MONITOR_PASSWORD for a UI with basic auth, or neither for a read-only UI on a loopback address", missing)
	}
	c.EnqueueToken, _ = r.raw("ENQUEUE_TOKEN")
	switch r.str("PPROF") {
	case "1", "true":
		c.PProf = true
	case "0", "false":
	default:
		r.fail("PPROF=%q: use 1 to serve /debug/pprof/ or 0 (default)", r.str("PPROF"))
	}
	c.QueueMetrics = r.oneOf("QUEUE_METRICS", "on", "off") == "on"
	c.PrometheusURL = r.str("PROMETHEUS_URL")
	if c.PrometheusURL != "" {
		if u, err := url.Parse(c.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("PROMETHEUS_URL=%q is not an http(s) URL; write e.g. http://prometheus:9090", c.PrometheusURL)
		}
	}
}

// parseLogging reads the log format and level.
func (c *Worker) parseLogging(r *reader) {
	c.LogFormat = r.oneOf("LOG_FORMAT", "auto", "json", "text")
	c.LogLevel = r.oneOf("LOG_LEVEL", "debug", "info", "warn", "error")
}
