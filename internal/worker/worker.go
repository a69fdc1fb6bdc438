package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
//
// The worker is a list of components, started in order and stopped in
// reverse when Run returns, whether it ran or a start failed.
func Run(ctx context.Context, cfg config.Worker, opt Options) error {
	a := &assembly{cfg: cfg, opt: opt, log: opt.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	var l lifecycle
	defer func() { l.stop(a.log) }()

	if err := l.start(
		component{"redis", a.startRedis},
		component{"metrics", a.startMetrics},
		component{"enqueue API", a.startEnqueueAPI},
		component{"ops handlers", a.startOps},
		component{"HTTP server", a.startHTTP},
		component{"redis watch", a.startRedisWatch},
	); err != nil {
		return err
	}
	if cfg.MonitorOnly {
		return a.monitor(ctx)
	}
	if err := l.start(
		component{"schedule", a.loadSchedule},
		component{"refresh handler", a.startHandler},
		component{"background loops", a.startLoops},
		component{"asynq server", a.startServer},
	); err != nil {
		return err
	}
	return a.serve(ctx)
}

// assembly is what one Run's components share: each start method builds
// its component from those started before it.
type assembly struct {
	cfg config.Worker
	opt Options
	log *slog.Logger

	redisOpt asynq.RedisConnOpt
	rdb      redis.UniversalClient
	watch    *redisWatch
	reg      *prometheus.Registry
	api      http.Handler // the enqueue API; nil without ENQUEUE_TOKEN
	ops      *opshttp.Server
	httpAddr string
	httpDone chan error // receives when the HTTP server stops serving
	runner   *schedule.Runner
	h        *handlers.Refresh

	// draining and started are what /readyz answers from.
	draining, started atomic.Bool
}

// startRedis connects the client every other component shares.
func (a *assembly) startRedis() (func(), error) {
	redisOpt, err := a.cfg.RedisSettings().Options()
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	rdb, err := redisconn.Client(redisOpt)
	if err != nil {
		return nil, err
	}
	a.redisOpt, a.rdb = redisOpt, rdb
	a.watch = newRedisWatch(rdb, redisOpt, a.cfg.RedisURL, a.log.With("component", "redis"))
	// Everything else logs through a filter that drops connection errors
	// while the watch has said Redis is away.
	a.log = slog.New(redisDownFilter{a.log.Handler(), &a.watch.down})
	return func() { _ = rdb.Close() }, nil
}

// startMetrics makes the registry the other components report to and,
// with QUEUE_METRICS, the gauges read from the queues and the stream.
func (a *assembly) startMetrics() (func(), error) {
	a.reg = metrics.NewRegistry()
	if !a.cfg.QueueMetrics {
		return nil, nil
	}
	insp := asynq.NewInspector(a.redisOpt)
	if err := a.registerQueueMetrics(insp); err != nil {
		_ = insp.Close()
		return nil, err
	}
	return func() { _ = insp.Close() }, nil
}

func (a *assembly) registerQueueMetrics(insp *asynq.Inspector) error {
	if err := metrics.RegisterQueues(a.reg, insp, a.cfg.Queues.Names()); err != nil {
		return fmt.Errorf("register queue metrics: %w", err)
	}
	if err := metrics.RegisterAsynqQueues(a.reg, insp, a.watch.down.Load); err != nil {
		return fmt.Errorf("register asynq's queue metrics: %w", err)
	}
	if err := metrics.RegisterResults(a.reg, a.rdb, a.cfg.ResultsStream, a.watch.down.Load); err != nil {
		return fmt.Errorf("register results metrics: %w", err)
	}
	return nil
}

// startEnqueueAPI makes the HTTP enqueue API when ENQUEUE_TOKEN is set.
func (a *assembly) startEnqueueAPI() (func(), error) {
	if a.cfg.EnqueueToken == "" {
		return nil, nil
	}
	// The API enqueues through the same client as cmd/enqueue, so its
	// validation and semantics are the CLI's.
	producer, err := client.NewFromRedisClient(a.rdb, client.WithQueues(a.cfg.Queues.Names()...), client.WithResultsStream(a.cfg.ResultsStream),
		client.WithActor(cancel.ActorHTTP), client.WithCancelWait(httpCancelWait), client.WithTaskDeadline(a.cfg.TaskDeadline))
	if err != nil {
		return nil, fmt.Errorf("enqueue API: %w", err)
	}
	a.api = enqueueapi.New(producer, a.cfg.EnqueueToken, a.log.With("component", "enqueueapi"), enqueueapi.WithMetrics(a.reg))
	return func() { _ = producer.Close() }, nil
}

// startOps makes the HTTP handlers: the web UI and its cancels, metrics,
// health, the upstreams page, the enqueue API and the caller's extras.
func (a *assembly) startOps() (func(), error) {
	uiCancels, closeUICancels, err := uiCanceller(a.rdb, a.cfg)
	if err != nil {
		return nil, err
	}
	extra := map[string]http.Handler{}
	for k, v := range a.opt.Extra {
		extra[k] = v
	}
	if a.api != nil {
		extra["/v1/"] = a.api
	}
	ops, err := opshttp.New(opshttp.Options{
		Cancel: uiCancels, CancelQueues: a.cfg.Queues.Names(),
		Addr: a.cfg.HTTPAddr, RedisOpt: a.redisOpt,
		MonitorUser: a.cfg.MonitorUser, MonitorPassword: a.cfg.MonitorPassword,
		Metrics: metrics.Handler(a.reg), Ready: a.ready, PProf: a.cfg.PProf,
		PrometheusURL: a.cfg.PrometheusURL,
		Upstreams:     statusPage(a.cfg, a.rdb, a.reg, a.log),
		Extra:         extra, Logger: a.log,
		// The API's routes must outlive its longest results long-poll.
		Limits: opshttp.Limits{API: enqueueapi.MaxWait + 15*time.Second},
	})
	if err != nil {
		closeUICancels()
		return nil, &config.UsageError{Err: err}
	}
	a.ops = ops
	return func() {
		_ = ops.Close()
		closeUICancels()
	}, nil
}

// ready is /readyz: not while starting or draining, nor while Redis is
// not answering.
func (a *assembly) ready(ctx context.Context) error {
	switch {
	case a.draining.Load():
		return errors.New("draining: shutting down")
	case !a.started.Load() && !a.cfg.MonitorOnly:
		return errors.New("starting")
	}
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return errors.New("redis is not answering")
	}
	return nil
}

// startHTTP serves the ops handlers on Options.Listener or HTTP_ADDR.
func (a *assembly) startHTTP() (func(), error) {
	ln := a.opt.Listener
	if ln == nil {
		var err error
		if ln, err = listen(a.cfg, a.log); err != nil {
			return nil, err
		}
	}
	srv := a.ops.NewHTTPServer()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	a.httpDone, a.httpAddr = done, ln.Addr().String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// startRedisWatch logs Redis's reachability, once per change, and feeds
// the log filter and the queue gauges.
func (a *assembly) startRedisWatch() (func(), error) {
	return goEach(a.watch.run), nil
}

// monitor serves the HTTP side alone until ctx ends, running no tasks.
func (a *assembly) monitor(ctx context.Context) error {
	a.log.Info("monitor only: serving the UI, metrics, health and the enqueue API, running no tasks", "http_addr", a.httpAddr)
	a.started.Store(true)
	if a.opt.Started != nil {
		a.opt.Started(a.httpAddr)
	}
	select {
	case <-ctx.Done():
	case err := <-a.httpDone:
		return fmt.Errorf("http server: %w", err)
	}
	a.draining.Store(true)
	return nil
}

// loadSchedule reads SCHEDULE_FILE for the background loops to run. A
// broken schedule file is a configuration error: refuse it before taking
// any task.
func (a *assembly) loadSchedule() (func(), error) {
	if a.cfg.ScheduleFile == "" {
		return nil, nil
	}
	runner, err := schedule.NewRunner(asynq.NewClientFromRedisClient(a.rdb), a.cfg.ScheduleFile,
		schedule.Options{Logger: a.log.With("component", "schedule"), Queues: a.cfg.Queues.Names()})
	if err != nil {
		return nil, &config.UsageError{Err: fmt.Errorf("SCHEDULE_FILE: %w", err)}
	}
	a.runner = runner
	return nil, nil
}

// startHandler makes the refresh handler. It closes only after the
// asynq server and the background loops have stopped, since both send
// through it to the end.
func (a *assembly) startHandler() (func(), error) {
	hcfg := handlerConfig(a.cfg, a.rdb, a.reg, a.opt.HTTPClient, a.log)
	hcfg.Tracer = a.opt.Tracer
	h, err := handlers.New(hcfg)
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	a.h = h
	return func() { _ = h.Close() }, nil
}

// startLoops starts the handler's maintenance (breaker state, cancels,
// the archive sweeper), the results trim and the schedule. They stop
// after the asynq server has drained, so a cancel still reaches a task
// that runs during the drain.
func (a *assembly) startLoops() (func(), error) {
	loops := []func(context.Context){
		a.h.RunMaintenance,
		func(ctx context.Context) { trimResults(ctx, a.rdb, a.cfg, a.log.With("component", "trim")) },
	}
	if a.runner != nil {
		loops = append(loops, func(ctx context.Context) { _ = a.runner.Run(ctx) })
	}
	return goEach(loops...), nil
}

// startServer starts taking tasks. Its stop is the drain: /readyz turns
// 503, no new task is taken, and in-flight ones get SHUTDOWN_GRACE.
func (a *assembly) startServer() (func(), error) {
	// Handlers' contexts end a little before asynq gives up on them, so an
	// interrupted request returns and the task is handed back in order.
	handlerCtx, cancelHandlers := context.WithCancel(context.Background())
	srv := newServer(a.redisOpt, a.cfg, handlerCtx, a.log)
	if err := srv.Start(a.h); err != nil {
		cancelHandlers()
		return nil, fmt.Errorf("start asynq server: %w", redisconn.RedactError(err, a.cfg.RedisURL))
	}
	return func() {
		defer cancelHandlers()
		a.draining.Store(true)
		a.log.Info("draining: taking no new tasks", "grace", a.cfg.ShutdownGrace.String())
		srv.Stop()
		timer := time.AfterFunc(max(a.cfg.ShutdownGrace-500*time.Millisecond, 0), cancelHandlers)
		defer timer.Stop()
		srv.Shutdown()
		a.log.Info("worker stopped")
	}, nil
}

// serve says the worker has started and runs until ctx ends or the HTTP
// server stops.
func (a *assembly) serve(ctx context.Context) error {
	a.started.Store(true)
	a.log.Info("worker started", "worker", a.h.Worker(), "queues", a.cfg.Queues.String(), "concurrency", a.cfg.Concurrency,
		"http_addr", a.httpAddr, "results_stream", a.cfg.ResultsStream, "redis", redisconn.RedactURL(a.cfg.RedisURL))
	if a.opt.Started != nil {
		a.opt.Started(a.httpAddr)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.httpDone:
		return fmt.Errorf("http server stopped: %w", err)
	}
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
	for _, p := range cfg.Providers {
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
	for _, p := range cfg.Providers {
		sp := statuspage.Provider{Name: p.Name, KeyVar: p.KeyVar}
		if p.APIKey != "" && !cfg.MonitorOnly {
			sp.KeyID = ratelimit.KeyID(p.APIKey)
		}
		providers = append(providers, sp)
	}
	limiter := ratelimit.New(rdb, ratelimit.FleetOptions(cfg.BreakerThreshold, cfg.BreakerOpenFor, cfg.RateMargin, cfg.UpstreamTimeout))
	return statuspage.New(statuspage.Options{
		Limiter: limiter, Results: results.NewReader(rdb, cfg.ResultsStream), Providers: providers,
		Metrics: reg, Process: results.WorkerName(), MonitorOnly: cfg.MonitorOnly,
		MonitoringPath: opshttp.MonitoringPath, Logger: log.With("component", "statuspage"),
	})
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
// it: a cancel by "UI", answered without waiting for a running task. A task
// that had ended is a 409 and an unknown one a 404, as opshttp answers them.
// closeFn closes the client it cancels through, once the UI is no longer
// served.
func uiCanceller(rdb redis.UniversalClient, cfg config.Worker) (cancelFn opshttp.CancelFunc, closeFn func(), err error) {
	c, err := client.NewFromRedisClient(rdb, client.WithQueues(cfg.Queues.Names()...), client.WithResultsStream(cfg.ResultsStream),
		client.WithActor(cancel.ActorUI), client.WithCancelWait(0))
	if err != nil {
		return nil, nil, fmt.Errorf("web UI cancels: %w", err)
	}
	cancelFn = func(ctx context.Context, taskID string) error {
		outs, _ := c.Cancel(ctx, taskID)
		o := outs[0]
		var ended *client.EndedError
		switch {
		case o.Err == nil:
			return nil
		case errors.As(o.Err, &ended):
			return &opshttp.CancelRefusedError{Status: http.StatusConflict, Message: ended.Error()}
		case errors.Is(o.Err, client.ErrUnknownTask):
			return &opshttp.CancelRefusedError{Status: http.StatusNotFound, Message: o.Err.Error()}
		}
		return o.Err
	}
	return cancelFn, func() { _ = c.Close() }, nil
}
