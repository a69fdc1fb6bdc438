package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/clients"
	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/enqueueapi"
	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/quota"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisbatch"
	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/internal/retry"
	"github.com/refreshq/refreshq/internal/schedule"
	"github.com/refreshq/refreshq/internal/statuspage"
	"github.com/refreshq/refreshq/results"
)

// asynq timings refreshq tunes, and why.
const (
	// forwardInterval is how often asynq moves due retries to pending
	// (DelayedTaskCheckInterval, 5 s by default): a task freed by its
	// budget or cooldown runs within about this much after.
	forwardInterval = 250 * time.Millisecond
	// pollInterval is how long an idle processor sleeps before looking at
	// empty queues again (TaskCheckInterval, 1 s by default).
	pollInterval = 100 * time.Millisecond
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
	// result (handlers.Sweeper); it adds at most this much to the ~1-2
	// minutes asynq takes to notice a dead worker's task.
	sweepEvery = 15 * time.Second
	// httpCancelWait is how long DELETE /v1/refreshes/{id} waits for a
	// running task's cancelled result before answering 202.
	httpCancelWait = 5 * time.Second
)

// Options are what a caller other than cmd/worker may set.
type Options struct {
	Logger *slog.Logger
	// Listener, when set, is served instead of listening on HTTP_ADDR
	// (tests pass one on port 0).
	Listener net.Listener
	// Started, when set, is called once tasks are being taken, with the
	// HTTP address actually listened on.
	Started func(httpAddr string)
	// HTTPClient is used for upstream requests; nil means a default one.
	HTTPClient *http.Client
	// Extra mounts more HTTP handlers (the enqueue API).
	Extra map[string]http.Handler
	// Tracer makes the spans of each task's run; nil makes none.
	Tracer trace.Tracer
}

// Name is host:pid, written in each result's worker field.
func Name() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// Run runs a worker until ctx ends, then drains: /readyz turns 503, no new
// task is taken, in-flight ones get SHUTDOWN_GRACE to finish, the rest go
// back to their queues. It returns nil after a clean drain.
func Run(ctx context.Context, cfg config.Worker, opt Options) error {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	redisOpt, err := cfg.RedisSettings().Options()
	if err != nil {
		return &config.UsageError{Err: err}
	}
	rdb, err := redisconn.Client(redisOpt)
	if err != nil {
		return err
	}
	defer rdb.Close()
	watch := newRedisWatch(rdb, redisOpt, cfg.RedisURL, log.With("component", "redis"))
	// Everything else logs through a filter that drops connection errors
	// while the watch has said Redis is away.
	log = slog.New(redisDownFilter{log.Handler(), &watch.down})
	// Closed after the server and the background loops (deferred first),
	// since the handlers and the sweeper send through it to the end.
	batch := redisbatch.New(rdb, redisbatch.Options{})
	defer batch.Close()

	m := metrics.New()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	if cfg.QueueMetrics {
		if err := m.RegisterQueues(insp, cfg.Queues.Names()); err != nil {
			return fmt.Errorf("register queue metrics: %w", err)
		}
		if err := m.RegisterAsynqQueues(insp, watch.down.Load); err != nil {
			return fmt.Errorf("register asynq's queue metrics: %w", err)
		}
		if err := m.RegisterResults(rdb, cfg.ResultsStream, watch.down.Load); err != nil {
			return fmt.Errorf("register results metrics: %w", err)
		}
	}
	limiter := ratelimit.New(rdb, ratelimit.Options{
		BreakerThreshold: cfg.BreakerThreshold,
		BreakerOpenFor:   cfg.BreakerOpenFor,
		Margin:           cfg.RateMargin,
		ProbeTimeout:     cfg.UpstreamTimeout + 5*time.Second,
	})

	var draining, started atomic.Bool
	ready := func(ctx context.Context) error {
		switch {
		case draining.Load():
			return errors.New("draining: shutting down")
		case !started.Load() && !cfg.MonitorOnly:
			return errors.New("starting")
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return errors.New("redis is not answering")
		}
		return nil
	}

	extra := map[string]http.Handler{}
	for k, v := range opt.Extra {
		extra[k] = v
	}
	if cfg.EnqueueToken != "" {
		// The API enqueues through the same client as cmd/enqueue, so its
		// validation and semantics are the CLI's.
		producer, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues), client.WithResultsStream(cfg.ResultsStream),
			client.WithActor(cancel.ActorHTTP), client.WithCancelWait(httpCancelWait), client.WithTaskDeadline(cfg.TaskDeadline))
		if err != nil {
			return fmt.Errorf("enqueue API: %w", err)
		}
		defer producer.Close()
		extra["/v1/"] = enqueueapi.New(producer, cfg.EnqueueToken, log.With("component", "enqueueapi"), enqueueapi.WithMetrics(m.Registry()))
	}

	upstreams, err := buildUpstreams(cfg, opt.HTTPClient)
	if err != nil {
		return &config.UsageError{Err: err}
	}
	uiCancels, err := uiCanceller(rdb, cfg)
	if err != nil {
		return err
	}
	ops, err := opshttp.New(opshttp.Options{
		Cancel: uiCancels, CancelQueues: cfg.Queues.Names(),
		Addr: cfg.HTTPAddr, RedisOpt: redisOpt,
		MonitorUser: cfg.MonitorUser, MonitorPassword: cfg.MonitorPassword,
		Metrics: m.Handler(), Ready: ready, PProf: cfg.PProf,
		PrometheusURL: cfg.PrometheusURL,
		Upstreams:     statusPage(cfg, limiter, rdb, upstreams, m, log),
		Extra:         extra, Logger: log,
		// The API's routes must outlive its longest results long-poll.
		Limits: opshttp.Limits{API: enqueueapi.MaxWait + 15*time.Second},
	})
	if err != nil {
		return &config.UsageError{Err: err}
	}
	defer ops.Close()
	ln := opt.Listener
	if ln == nil {
		if ln, err = listen(cfg, log); err != nil {
			return err
		}
	}
	httpSrv := ops.NewHTTPServer()
	httpDone := make(chan error, 1)
	go func() { httpDone <- httpSrv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
	}()
	httpAddr := ln.Addr().String()

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(context.Background())
	defer func() { stopBG(); bg.Wait() }()

	bg.Add(1)
	go func() { defer bg.Done(); watch.run(bgCtx) }()

	if cfg.MonitorOnly {
		log.Info("monitor only: serving the UI, metrics and health, running no tasks", "http_addr", httpAddr)
		started.Store(true)
		if opt.Started != nil {
			opt.Started(httpAddr)
		}
		select {
		case <-ctx.Done():
		case err := <-httpDone:
			return fmt.Errorf("http server: %w", err)
		}
		draining.Store(true)
		return nil
	}

	// A broken schedule file is a configuration error: refuse it before
	// taking any task.
	var runner *schedule.Runner
	if cfg.ScheduleFile != "" {
		runner, err = schedule.NewRunner(asynq.NewClientFromRedisClient(rdb), cfg.ScheduleFile,
			schedule.Options{Logger: log.With("component", "schedule"), Queues: cfg.Queues.Names()})
		if err != nil {
			return &config.UsageError{Err: fmt.Errorf("SCHEDULE_FILE: %w", err)}
		}
	}

	hc := opt.HTTPClient
	if hc == nil {
		hc = upstreamHTTPClient(cfg.Concurrency)
	}
	if upstreams, err = buildUpstreams(cfg, hc); err != nil {
		return &config.UsageError{Err: err}
	}
	for _, u := range upstreams {
		if u.Call == nil {
			log.Warn("provider not configured: its tasks will end with an auth result", "provider", u.Provider, "set", u.KeyVar)
		}
	}
	led := ledger.New(rdb, "", cfg.TaskDeadline+ledgerGrace)
	engine, err := quota.New(quota.Options{
		Limiter: limiter, Ledger: led, Stream: cfg.ResultsStream, Redis: batch,
		Lanes: cfg.Queues.ByPriority(), Reserve: cfg.LaneReserve, LineWait: lineWait,
	})
	if err != nil {
		return &config.UsageError{Err: err}
	}
	h := &handlers.Refresh{
		Ledger:        led,
		Publisher:     results.NewPublisher(rdb, cfg.ResultsStream, 0),
		Limiter:       limiter,
		Quota:         engine,
		Redis:         batch,
		Inspector:     insp,
		Metrics:       m,
		Logger:        log,
		Upstreams:     upstreams,
		Policy:        retry.Policy{Initial: cfg.RetryInitial, Max: cfg.RetryMaxInterval},
		MaxRetries:    cfg.MaxRetries,
		TaskDeadline:  cfg.TaskDeadline,
		RetryAfterMax: cfg.RetryAfterMax,
		InlineWait:    inlineWait,
		Worker:        Name(),
		Now:           time.Now,
		Cancels:       cancel.NewWatcher(rdb, 0, log.With("component", "cancel")),
		Tracer:        opt.Tracer,
	}

	// Handlers' contexts end a little before asynq gives up on them, so an
	// interrupted request returns and the task is handed back in order.
	handlerCtx, cancelHandlers := context.WithCancel(context.Background())
	defer cancelHandlers()
	srv := newServer(redisOpt, cfg, handlerCtx, log)
	if err := srv.Start(h); err != nil {
		return fmt.Errorf("start asynq server: %w", redactErr(err, cfg.RedisURL))
	}
	started.Store(true)
	log.Info("worker started", "worker", h.Worker, "queues", cfg.Queues.String(), "concurrency", cfg.Concurrency,
		"http_addr", httpAddr, "results_stream", cfg.ResultsStream, "redis", client.RedactURL(cfg.RedisURL))
	if opt.Started != nil {
		opt.Started(httpAddr)
	}

	bg.Add(1)
	go func() { defer bg.Done(); watchState(bgCtx, limiter, upstreams, m, log) }()
	bg.Add(1)
	go func() { defer bg.Done(); h.Cancels.Run(bgCtx) }()
	sweeper := &handlers.Sweeper{Refresh: h, RDB: rdb, Queues: cfg.Queues.Names()}
	bg.Add(1)
	go func() { defer bg.Done(); sweeper.Run(bgCtx, sweepEvery) }()
	bg.Add(1)
	go func() { defer bg.Done(); trimResults(bgCtx, rdb, cfg, log.With("component", "trim")) }()

	if runner != nil {
		bg.Add(1)
		go func() { defer bg.Done(); _ = runner.Run(bgCtx) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		runErr = fmt.Errorf("http server stopped: %w", err)
	}

	draining.Store(true)
	log.Info("draining: taking no new tasks", "grace", cfg.ShutdownGrace.String())
	srv.Stop()
	timer := time.AfterFunc(max(cfg.ShutdownGrace-500*time.Millisecond, 0), cancelHandlers)
	defer timer.Stop()
	srv.Shutdown()
	log.Info("worker stopped")
	return runErr
}

// newServer is the asynq server with refreshq's retry hooks and timings;
// handlers' contexts derive from base.
func newServer(redisOpt asynq.RedisConnOpt, cfg config.Worker, base context.Context, log *slog.Logger) *asynq.Server {
	return asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues.Weights(),
		BaseContext:              func() context.Context { return base },
		RetryDelayFunc:           retry.DelayFunc(time.Second),
		IsFailure:                retry.IsFailure,
		ShutdownTimeout:          cfg.ShutdownGrace,
		DelayedTaskCheckInterval: forwardInterval,
		TaskCheckInterval:        pollInterval,
		Logger:                   newAsynqLogger(log.With("component", "asynq")),
		LogLevel:                 asynq.WarnLevel,
		// Redis's reachability is logged by redisWatch, once per change.
		HealthCheckFunc: func(error) {},
	})
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

// buildUpstreams makes the provider clients from the configuration. A
// provider with no API key gets a nil Call: its tasks end with auth.
func buildUpstreams(cfg config.Worker, hc *http.Client) (map[string]handlers.Upstream, error) {
	out := map[string]handlers.Upstream{}
	for _, p := range []config.Provider{cfg.BundleSocial, cfg.Hooked} {
		u := handlers.Upstream{Provider: p.Name, KeyVar: p.KeyVar, Budget: p.Budget, DailyCap: p.DailyCap,
			Key: ratelimit.Key{Provider: p.Name, KeyID: ratelimit.KeyID(p.APIKey), Endpoint: ratelimit.EndpointID(p.BaseURL)}}
		if p.APIKey != "" {
			opts := []clients.Option{clients.WithBaseURL(p.BaseURL), clients.WithTimeout(cfg.UpstreamTimeout)}
			if hc != nil {
				opts = append(opts, clients.WithHTTPClient(hc))
			}
			switch p.Name {
			case "bundle_social":
				c, err := clients.NewBundleSocial(p.APIKey, opts...)
				if err != nil {
					return nil, fmt.Errorf("BUNDLE_SOCIAL: %w", err)
				}
				u.Call = handlers.BundleSocialCall(c)
			case "hooked":
				c, err := clients.NewHooked(p.APIKey, opts...)
				if err != nil {
					return nil, fmt.Errorf("HOOKED: %w", err)
				}
				u.Call = handlers.HookedCall(c)
			}
		}
		out[p.Name] = u
	}
	return out, nil
}

// statusPage is the upstreams page of this process: fleet-wide state from
// Redis, this process's own counters labelled as such.
func statusPage(cfg config.Worker, l *ratelimit.Limiter, rdb redis.UniversalClient, ups map[string]handlers.Upstream, m *metrics.Metrics, log *slog.Logger) http.Handler {
	var providers []statuspage.Provider
	for _, p := range []config.Provider{cfg.BundleSocial, cfg.Hooked} {
		sp := statuspage.Provider{Name: p.Name, KeyVar: p.KeyVar}
		if u := ups[p.Name]; p.APIKey != "" && !cfg.MonitorOnly {
			sp.KeyID = u.Key.KeyID
		}
		providers = append(providers, sp)
	}
	return statuspage.New(statuspage.Options{
		Limiter: l, Results: results.NewReader(rdb, cfg.ResultsStream), Providers: providers,
		Metrics: m.Registry(), Process: Name(), MonitorOnly: cfg.MonitorOnly,
		MonitoringPath: opshttp.MonitoringPath, Logger: log.With("component", "statuspage"),
	})
}

// watchState publishes breaker and daily-cap state to metrics, logs each
// breaker change once, and announces the keys this process serves, so the
// upstreams page of any process (the monitor too) can show them.
func watchState(ctx context.Context, l *ratelimit.Limiter, ups map[string]handlers.Upstream, m *metrics.Metrics, log *slog.Logger) {
	last := map[string]string{}
	t := time.NewTicker(stateEvery)
	defer t.Stop()
	for {
		for name, u := range ups {
			if u.Call != nil {
				if err := l.Announce(ctx, u.Key, u.Budget, u.DailyCap); err != nil {
					log.Debug("announce key", "provider", name, "err", err)
				}
			}
			if state, err := l.BreakerState(ctx, u.Key); err == nil {
				m.SetBreakerState(name, state)
				if prev, ok := last[name]; ok && prev != state {
					log.Warn("breaker changed state", "provider", name, "from", prev, "to", state)
				}
				last[name] = state
			}
			m.SetDailyCap(name, u.DailyCap)
			if u.DailyCap > 0 {
				if n, err := l.DailyUsed(ctx, u.Key); err == nil {
					m.SetDailyUsed(name, n)
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

// redactErr keeps the Redis password out of an error's text.
func redactErr(err error, url string) error {
	return errors.New(replaceSecret(err.Error(), url))
}

// listen opens HTTP_ADDR. When HTTP_ADDR was left at its default and that
// port is taken (a second worker on one machine), it serves on a free port
// of the same host instead of refusing to run tasks; an address the
// operator chose must be free.
func listen(cfg config.Worker, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err == nil {
		return ln, nil
	}
	if !cfg.HTTPAddrDefault {
		return nil, fmt.Errorf("listen on HTTP_ADDR %s: %w; choose a free address", cfg.HTTPAddr, err)
	}
	host, _, _ := net.SplitHostPort(cfg.HTTPAddr)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, fmt.Errorf("listen on HTTP_ADDR %s: %w; choose a free address", cfg.HTTPAddr, err)
	}
	log.Warn("the default HTTP_ADDR is taken, serving on another port; set HTTP_ADDR to choose", "default", cfg.HTTPAddr, "http_addr", ln.Addr().String())
	return ln, nil
}

// uiCanceller is how the web UI's delete, archive and cancel of a task end
// it: a cancel by "UI", answered without waiting for a running task.
func uiCanceller(rdb redis.UniversalClient, cfg config.Worker) (opshttp.CancelFunc, error) {
	c, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues), client.WithResultsStream(cfg.ResultsStream),
		client.WithActor(cancel.ActorUI), client.WithCancelWait(0))
	if err != nil {
		return nil, fmt.Errorf("web UI cancels: %w", err)
	}
	return UICancel(c), nil
}

// UICancel adapts c's Cancel to the web UI's: a task that had ended is a
// 409 and an unknown one a 404, as opshttp answers them.
func UICancel(c *client.Client) opshttp.CancelFunc {
	return func(ctx context.Context, taskID string) error {
		outs, _ := c.Cancel(ctx, taskID)
		o := outs[0]
		var ended *client.EndedError
		switch {
		case o.Err == nil:
			return nil
		case errors.As(o.Err, &ended):
			return &opshttp.CancelRefused{Status: http.StatusConflict, Message: ended.Error()}
		case errors.Is(o.Err, client.ErrUnknownTask):
			return &opshttp.CancelRefused{Status: http.StatusNotFound, Message: o.Err.Error()}
		}
		return o.Err
	}
}
