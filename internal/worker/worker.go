package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/client"
	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/internal/cancel"
	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/enqueueapi"
	"github.com/refreshq/refreshq/internal/metrics"
	"github.com/refreshq/refreshq/internal/opshttp"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/internal/redisconn"
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

	reg := metrics.NewRegistry()
	insp := asynq.NewInspector(redisOpt)
	defer insp.Close()
	if cfg.QueueMetrics {
		if err := metrics.RegisterQueues(reg, insp, cfg.Queues.Names()); err != nil {
			return fmt.Errorf("register queue metrics: %w", err)
		}
		if err := metrics.RegisterAsynqQueues(reg, insp, watch.down.Load); err != nil {
			return fmt.Errorf("register asynq's queue metrics: %w", err)
		}
		if err := metrics.RegisterResults(reg, rdb, cfg.ResultsStream, watch.down.Load); err != nil {
			return fmt.Errorf("register results metrics: %w", err)
		}
	}

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
		producer, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues.Names()...), client.WithResultsStream(cfg.ResultsStream),
			client.WithActor(cancel.ActorHTTP), client.WithCancelWait(httpCancelWait), client.WithTaskDeadline(cfg.TaskDeadline))
		if err != nil {
			return fmt.Errorf("enqueue API: %w", err)
		}
		defer producer.Close()
		extra["/v1/"] = enqueueapi.New(producer, cfg.EnqueueToken, log.With("component", "enqueueapi"), enqueueapi.WithMetrics(reg))
	}

	uiCancels, err := uiCanceller(rdb, cfg)
	if err != nil {
		return err
	}
	ops, err := opshttp.New(opshttp.Options{
		Cancel: uiCancels, CancelQueues: cfg.Queues.Names(),
		Addr: cfg.HTTPAddr, RedisOpt: redisOpt,
		MonitorUser: cfg.MonitorUser, MonitorPassword: cfg.MonitorPassword,
		Metrics: metrics.Handler(reg), Ready: ready, PProf: cfg.PProf,
		PrometheusURL: cfg.PrometheusURL,
		Upstreams:     statusPage(cfg, rdb, reg, log),
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
		log.Info("monitor only: serving the UI, metrics, health and the enqueue API, running no tasks", "http_addr", httpAddr)
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

	hcfg := handlerConfig(cfg, rdb, reg, opt.HTTPClient, log)
	hcfg.Tracer = opt.Tracer
	h, err := handlers.New(hcfg)
	if err != nil {
		return &config.UsageError{Err: err}
	}
	// Closed after the server and the background loops (deferred first),
	// since the handlers and the sweeper send through it to the end.
	defer h.Close()

	// Handlers' contexts end a little before asynq gives up on them, so an
	// interrupted request returns and the task is handed back in order.
	handlerCtx, cancelHandlers := context.WithCancel(context.Background())
	defer cancelHandlers()
	srv := newServer(redisOpt, cfg, handlerCtx, log)
	if err := srv.Start(h); err != nil {
		return fmt.Errorf("start asynq server: %w", redactErr(err, cfg.RedisURL))
	}
	started.Store(true)
	log.Info("worker started", "worker", h.Worker(), "queues", cfg.Queues.String(), "concurrency", cfg.Concurrency,
		"http_addr", httpAddr, "results_stream", cfg.ResultsStream, "redis", client.RedactURL(cfg.RedisURL))
	if opt.Started != nil {
		opt.Started(httpAddr)
	}

	bg.Add(1)
	go func() { defer bg.Done(); h.RunMaintenance(bgCtx) }()
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
	ac := asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues.Weights(),
		BaseContext:              func() context.Context { return base },
		ShutdownTimeout:          cfg.ShutdownGrace,
		DelayedTaskCheckInterval: forwardInterval,
		TaskCheckInterval:        pollInterval,
		Logger:                   newAsynqLogger(log.With("component", "asynq")),
		LogLevel:                 asynq.WarnLevel,
		// Redis's reachability is logged by redisWatch, once per change.
		HealthCheckFunc: func(error) {},
	}
	handlers.ConfigureServer(&ac)
	return asynq.NewServer(redisOpt, ac)
}

// handlerConfig is the refresh handler's share of the worker's settings.
func handlerConfig(cfg config.Worker, rdb redis.UniversalClient, reg prometheus.Registerer, hc *http.Client, log *slog.Logger) handlers.Config {
	providers := map[string]handlers.Provider{}
	for _, p := range []config.Provider{cfg.BundleSocial, cfg.Hooked} {
		providers[p.Name] = handlers.Provider{APIKey: p.APIKey, KeyVar: p.KeyVar, BaseURL: p.BaseURL, Rate: p.Budget.String(), DailyCap: p.DailyCap}
	}
	maxRetries := cfg.MaxRetries
	if maxRetries == 0 {
		maxRetries = handlers.NoRetries
	}
	return handlers.Config{
		Redis:            rdb,
		ResultsStream:    cfg.ResultsStream,
		Providers:        providers,
		Queues:           cfg.Queues.ByPriority(),
		LaneReserve:      cfg.LaneReserve,
		MaxRetries:       maxRetries,
		RetryInitial:     cfg.RetryInitial,
		RetryMax:         cfg.RetryMaxInterval,
		UpstreamTimeout:  cfg.UpstreamTimeout,
		TaskDeadline:     cfg.TaskDeadline,
		BreakerThreshold: cfg.BreakerThreshold,
		BreakerOpenFor:   cfg.BreakerOpenFor,
		RateMargin:       cfg.RateMargin,
		RetryAfterMax:    cfg.RetryAfterMax,
		HTTPClient:       hc,
		Concurrency:      cfg.Concurrency,
		Metrics:          reg,
		Logger:           log,
	}
}

// statusPage is the upstreams page of this process: fleet-wide state from
// Redis, this process's own counters labelled as such. It reads the
// limiter's state, which lives in Redis, through a limiter of its own.
func statusPage(cfg config.Worker, rdb redis.UniversalClient, reg *prometheus.Registry, log *slog.Logger) http.Handler {
	var providers []statuspage.Provider
	for _, p := range []config.Provider{cfg.BundleSocial, cfg.Hooked} {
		sp := statuspage.Provider{Name: p.Name, KeyVar: p.KeyVar}
		if p.APIKey != "" && !cfg.MonitorOnly {
			sp.KeyID = ratelimit.KeyID(p.APIKey)
		}
		providers = append(providers, sp)
	}
	limiter := ratelimit.New(rdb, ratelimit.Options{
		BreakerThreshold: cfg.BreakerThreshold,
		BreakerOpenFor:   cfg.BreakerOpenFor,
		Margin:           cfg.RateMargin,
		ProbeTimeout:     cfg.UpstreamTimeout + 5*time.Second,
	})
	return statuspage.New(statuspage.Options{
		Limiter: limiter, Results: results.NewReader(rdb, cfg.ResultsStream), Providers: providers,
		Metrics: reg, Process: results.WorkerName(), MonitorOnly: cfg.MonitorOnly,
		MonitoringPath: opshttp.MonitoringPath, Logger: log.With("component", "statuspage"),
	})
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
	c, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues.Names()...), client.WithResultsStream(cfg.ResultsStream),
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
