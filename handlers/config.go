package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Defaults for zero fields of Config and Provider; the worker's settings
// of the same names default to them.
const (
	DefaultMaxRetries      = 10
	DefaultRetryInitial    = time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultTaskDeadline    = tasks.DefaultTaskDeadline
	DefaultRetryAfterMax   = time.Hour
)

// NoRetries as Config.MaxRetries ends a task at its first failed try.
const NoRetries = -1

// Timings the handler keeps to itself, and why.
const (
	// inlineWait: waits up to this long are slept in the handler, longer
	// ones hand the task back to asynq.
	inlineWait = time.Second
	// lineWait: a task holds its place in a key's waiting line, sleeping
	// in its handler, for waits up to this long: a few spans of a 1s
	// window, so that the tasks a budget serves in the next seconds stand
	// in line in their order, and a lane's or tenant's next task is
	// there when its turn comes instead of in asynq's retry set.
	lineWait = 5 * time.Second
	// ledgerGrace keeps a task's ledger after its deadline, for an
	// operator who re-runs it from the archive.
	ledgerGrace = 7 * 24 * time.Hour
	// stateEvery is how often breaker and daily-cap state is read for
	// metrics and logs.
	stateEvery = 5 * time.Second
	// sweepEvery is how often archived tasks are checked for a missing
	// result; it adds at most this much to the ~1-2 minutes asynq takes to
	// notice a dead worker's task.
	sweepEvery = 15 * time.Second
	// crashRetry is how soon a task whose handler did not return (a
	// panic, a lost lease) runs again, so its handler decides its fate.
	crashRetry = time.Second
)

// Provider is one upstream's settings.
type Provider struct {
	// APIKey authenticates every request. Empty: the provider is not
	// served, and its tasks end with an auth result naming KeyVar.
	APIKey string
	// KeyVar names where the key is configured (BUNDLE_SOCIAL_API_KEY,
	// say), for that result's message.
	KeyVar string
	// BaseURL is the API's root; empty means the provider's public API.
	BaseURL string
	// Rate is the fleet-wide budget, N/DURATION[,N/DURATION...] such as
	// "5/1s,20/10s,100/1m", or "off"; empty means the provider's default,
	// its API's documented limit (docs/reference.md lists each).
	Rate string
	// DailyCap is how many requests a UTC day may send; 0 means no cap.
	DailyCap int
}

// Config is what a Refresh needs. Zero fields take the defaults above.
type Config struct {
	// Redis is the Redis the asynq server uses: the ledger, the fleet's
	// rate limits and the results stream live there too. Required; Close
	// does not close it.
	Redis redis.UniversalClient
	// ResultsStream is the results stream's key; empty means
	// results.DefaultStream.
	ResultsStream string
	// Providers are the upstreams' settings by provider id, one of
	// tasks.Providers(). A provider left out is not served.
	Providers map[string]Provider
	// Queues are the queues refreshq's tasks are enqueued on, highest
	// priority first: lanes of the fleet's budgets, and where the archive
	// sweeper looks. Empty means tasks.DefaultQueues().
	Queues []string
	// LaneReserve is the share of a key's budget kept for lower-priority
	// queues while they have tasks waiting; 0 keeps none.
	LaneReserve float64

	// MaxRetries is how many times a failed try (429s excluded) is
	// retried; 0 means DefaultMaxRetries, NoRetries none.
	MaxRetries int
	// RetryInitial and RetryMax shape the exponential backoff between tries.
	RetryInitial, RetryMax time.Duration
	// UpstreamTimeout bounds one upstream request.
	UpstreamTimeout time.Duration
	// TaskDeadline ends a task failed this long after it was enqueued.
	TaskDeadline time.Duration
	// BreakerThreshold and BreakerOpenFor tune every provider's circuit
	// breaker; RateMargin is added to every budget window (negative: none).
	BreakerThreshold int
	BreakerOpenFor   time.Duration
	RateMargin       time.Duration
	// RetryAfterMax bounds how long one upstream hint (a Retry-After, or a
	// quota read from a response) pauses an API key and the task that got
	// it; 0 means DefaultRetryAfterMax.
	RetryAfterMax time.Duration

	// HTTPClient sends upstream requests; nil means one that keeps an idle
	// connection for every task in flight (see Concurrency).
	HTTPClient *http.Client
	// Concurrency is the asynq server's, used to size the default
	// HTTPClient's idle connections.
	Concurrency int
	// Metrics, when set, receives refreshq's task and upstream metrics.
	Metrics prometheus.Registerer
	// Logger receives the handler's logs; nil discards them.
	Logger *slog.Logger
	// Tracer makes the spans of each task's run; nil makes none.
	Tracer trace.Tracer
	// Worker names this process in each result's worker field; empty
	// means host:pid.
	Worker string
}

// New returns a Refresh for cfg, or an error saying which setting is wrong.
func New(cfg Config) (*Refresh, error) { return newRefresh(cfg, keyPrefixes{}) }

// keyPrefixes start the Redis keys of the ledger and of the limiter (with
// the quota engine's waiting lines); empty means their packages' defaults.
// Processes that share a Redis and its fleet share these, so only tests,
// which share one Redis without sharing state, set them.
type keyPrefixes struct{ ledger, limiter string }

func newRefresh(cfg Config, keys keyPrefixes) (*Refresh, error) {
	if cfg.Redis == nil {
		return nil, errors.New("handlers: Config.Redis is required: the Redis the asynq server uses")
	}
	cfg = withDefaults(cfg)
	ups, err := buildUpstreams(cfg)
	if err != nil {
		return nil, err
	}
	rdb := cfg.Redis
	limOpt := ratelimit.FleetOptions(cfg.BreakerThreshold, cfg.BreakerOpenFor, cfg.RateMargin, cfg.UpstreamTimeout)
	limOpt.Prefix = keys.limiter
	limiter := ratelimit.New(rdb, limOpt)
	led := ledger.New(rdb, keys.ledger, cfg.TaskDeadline+ledgerGrace)
	engine, err := quota.New(quota.Options{
		Limiter: limiter, Ledger: led, Stream: cfg.ResultsStream,
		Lanes: cfg.Queues, Reserve: cfg.LaneReserve, LineWait: lineWait,
	})
	if err != nil {
		return nil, fmt.Errorf("handlers: %w", err)
	}
	// Registered last of what can fail: a caller that fixes its Config
	// and calls New again with the same registry must not find them taken.
	var m *metrics.Metrics
	if cfg.Metrics != nil {
		if m, err = metrics.New(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("handlers: register metrics: %w", err)
		}
	}
	batch := redisbatch.New(rdb, redisbatch.Options{})
	return &Refresh{
		ledger:        led,
		publisher:     results.NewPublisher(rdb, cfg.ResultsStream, 0),
		limiter:       limiter,
		quota:         engine,
		redis:         batch,
		inspector:     asynq.NewInspectorFromRedisClient(rdb),
		metrics:       m,
		logger:        cfg.Logger,
		upstreams:     ups,
		policy:        retry.Policy{Initial: cfg.RetryInitial, Max: cfg.RetryMax},
		maxRetries:    cfg.MaxRetries,
		taskDeadline:  cfg.TaskDeadline,
		retryAfterMax: cfg.RetryAfterMax,
		inlineWait:    inlineWait,
		worker:        cfg.Worker,
		now:           time.Now,
		tracing:       cfg.Tracer,
		cancels:       cancel.NewWatcher(rdb, 0, cfg.Logger.With("component", "cancel")),
		rdb:           rdb,
		queues:        cfg.Queues,
		// The batcher sends until the last handler returns; the
		// inspector shares rdb, which is the caller's to close.
		closers: []func() error{func() error { batch.Close(); return nil }},
	}, nil
}

func withDefaults(cfg Config) Config {
	if cfg.ResultsStream == "" {
		cfg.ResultsStream = results.DefaultStream
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = tasks.DefaultQueues()
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = DefaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = DefaultRetryInitial
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if cfg.TaskDeadline <= 0 {
		cfg.TaskDeadline = DefaultTaskDeadline
	}
	if cfg.RetryAfterMax <= 0 {
		cfg.RetryAfterMax = DefaultRetryAfterMax
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Worker == "" {
		cfg.Worker = results.WorkerName()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = upstreamHTTPClient(cfg.Concurrency)
	}
	return cfg
}

// upstreamHTTPClient keeps an idle connection for every task in flight:
// net/http's default transport keeps two per host, so with more tasks in
// flight most requests would open (and the upstream accept) a new
// connection.
func upstreamHTTPClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(concurrency, 2)
	return &http.Client{Transport: tr}
}

// buildUpstreams makes a client for each provider of tasks.Providers()
// that has an API key, with its budget; one without a key gets a nil call:
// its tasks end with auth.
func buildUpstreams(cfg Config) (map[string]upstream, error) {
	all := clients.Upstreams()
	for name := range cfg.Providers {
		if !slices.ContainsFunc(all, func(a clients.Upstream) bool { return a.Provider == name }) {
			return nil, fmt.Errorf("handlers: Config.Providers names %q, which is not a provider; want one of %s", name, strings.Join(tasks.Providers(), ", "))
		}
	}
	out := map[string]upstream{}
	for _, api := range all {
		name := api.Provider
		p := cfg.Providers[name]
		if p.BaseURL == "" {
			p.BaseURL = api.BaseURL
		}
		if p.Rate == "" {
			p.Rate = api.Rate
		}
		budget, err := ratelimit.ParseBudget(p.Rate)
		if err != nil {
			return nil, fmt.Errorf("handlers: %s rate: %w", name, err)
		}
		u := upstream{Provider: name, KeyVar: p.KeyVar, Budget: budget, DailyCap: p.DailyCap,
			Key: ratelimit.Key{Provider: name, KeyID: ratelimit.KeyID(p.APIKey), Endpoint: ratelimit.EndpointID(p.BaseURL)}}
		if p.APIKey != "" {
			c, err := api.New(p.APIKey, clients.WithBaseURL(p.BaseURL), clients.WithTimeout(cfg.UpstreamTimeout), clients.WithHTTPClient(cfg.HTTPClient))
			if err != nil {
				return nil, fmt.Errorf("handlers: %s: %w", name, err)
			}
			u.Call = c.Refresh
		} else {
			cfg.Logger.Warn("provider not configured: its tasks will end with an auth result", "provider", name, "set", keyVar(u, name))
		}
		out[name] = u
	}
	return out, nil
}

// Close releases what New made. Call it after the asynq server has shut
// down: handlers still running need it.
func (h *Refresh) Close() error {
	var errs []error
	for _, c := range h.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Worker is the name written in each result's worker field.
func (h *Refresh) Worker() string { return h.worker }

// Register adds the handler for refreshq's task types to mux, next to the
// caller's own. An archived task of another type is then not refreshq's:
// RunMaintenance leaves it alone. A server whose queues hold only
// refreshq's tasks may instead use the Refresh itself as its handler, so
// that a task of an unknown type ends with an unknown_task_type result.
func (h *Refresh) Register(mux *asynq.ServeMux) {
	h.mounted = true
	for _, t := range tasks.Types() {
		mux.Handle(t, h)
	}
}

// ConfigureServer fills in what refreshq's guarantees need from the asynq
// server's Config, keeping the rest of cfg:
//
//   - RetryDelayFunc: a refreshq task runs again when its handler asked
//     (a budget wait, a 429's Retry-After, the backoff), rounded up to
//     asynq's whole seconds; one whose handler never returned (a panic, a
//     worker that died) runs again after a second, so its handler decides
//     its fate. Other tasks keep cfg's RetryDelayFunc (asynq's default if
//     nil).
//   - IsFailure: only a failed upstream try counts toward asynq's retry
//     count, never a wait. Other errors keep cfg's IsFailure; when cfg has
//     none, no other error counts either (a lost lease included), since
//     refreshq counts its own tries in Redis.
//
// asynq's own MaxRetry never decides a refreshq task's fate: producers set
// tasks.DefaultMaxRetry, and RunMaintenance ends any task asynq archives
// without a result.
func ConfigureServer(cfg *asynq.Config) {
	delay, isFailure := cfg.RetryDelayFunc, cfg.IsFailure
	if delay == nil {
		delay = asynq.DefaultRetryDelayFunc
	}
	ours := retry.DelayFunc(crashRetry)
	cfg.RetryDelayFunc = func(n int, err error, t *asynq.Task) time.Duration {
		var later *retry.LaterError
		if _, known := tasks.ProviderForType(t.Type()); known || errors.As(err, &later) {
			return ours(n, err, t)
		}
		return delay(n, err, t)
	}
	if isFailure == nil {
		cfg.IsFailure = retry.IsFailure
		return
	}
	cfg.IsFailure = func(err error) bool {
		var later *retry.LaterError
		var interrupted *interruptedError
		if errors.As(err, &later) || errors.As(err, &interrupted) {
			return retry.IsFailure(err)
		}
		return isFailure(err)
	}
}

// RunMaintenance runs what keeps the guarantees between tasks until ctx
// ends: the archive sweeper, which publishes the one result of a task asynq
// archived without running its handler (a worker that died on the task's
// last asynq retry), the watch that ends running tasks when they are
// cancelled, and the breaker and daily-cap gauges. Every worker of
// a fleet runs it; passes in different processes are harmless together.
func (h *Refresh) RunMaintenance(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { h.watchState(ctx) })
	wg.Go(func() { h.cancels.Run(ctx) })
	wg.Go(func() { (&sweeper{h: h}).run(ctx, sweepEvery) })
	wg.Wait()
}

// watchState publishes breaker and daily-cap state to metrics, logs each
// breaker change once, and announces the keys this process serves, so the
// upstreams page of any process (the monitor too) can show them.
func (h *Refresh) watchState(ctx context.Context) {
	last := map[string]string{}
	t := time.NewTicker(stateEvery)
	defer t.Stop()
	for {
		for name, u := range h.upstreams {
			if u.Call != nil {
				if err := h.limiter.Announce(ctx, u.Key, u.Budget, u.DailyCap); err != nil {
					h.logger.Debug("announce key", "provider", name, "err", err)
				}
			}
			if state, err := h.limiter.BreakerState(ctx, u.Key); err == nil {
				h.metrics.SetBreakerState(name, state)
				if prev, ok := last[name]; ok && prev != state {
					h.logger.Warn("breaker changed state", "provider", name, "from", prev, "to", state)
				}
				last[name] = state
			}
			h.metrics.SetDailyCap(name, u.DailyCap)
			if u.DailyCap > 0 {
				if n, err := h.limiter.DailyUsed(ctx, u.Key); err == nil {
					h.metrics.SetDailyUsed(name, n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
