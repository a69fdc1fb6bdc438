package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/redisconn"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/tracectx"
	"github.com/refreshq/refreshq/internal/worker"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// demoDefaults shorten the production defaults so every outcome shows up
// within a minute; anything set in the environment still wins.
var demoDefaults = map[string]string{
	"MAX_RETRIES":        "3",
	"RETRY_INITIAL":      "500ms",
	"RETRY_MAX_INTERVAL": "4s",
	"UPSTREAM_TIMEOUT":   "3s",
	"TASK_DEADLINE":      "2m",
	"LOG_LEVEL":          "warn",
}

// demoKey is the simulator's API key: the demo never calls the real APIs.
const demoKey = "demo-key"

// The demo's own queue and results stream. With REDIS_URL set the demo
// may share a Redis with a real fleet: it takes, runs and publishes only
// its own tasks there, and never enqueues onto the real queues or adds to
// (or trims) the real results stream. asynq has no key prefix, so the
// queue's name is what keeps the two apart.
const (
	demoQueue  = "refreshq-demo"
	demoStream = "refreshq-demo:results"
)

// demoForced are settings the demo decides whatever the environment says:
// its namespace, no schedule (it would enqueue real work) and no
// credentials, so the UI stays read-only and cannot pause a real queue.
var demoForced = map[string]string{
	"QUEUES":           demoQueue + "=1",
	"RESULTS_STREAM":   demoStream,
	"SCHEDULE_FILE":    "",
	"MONITOR_USER":     "",
	"MONITOR_PASSWORD": "",
}

// runDemo runs the whole system in one process: embedded Redis unless
// REDIS_URL is set, the upstream simulator always, a sample batch, and the
// results printed as they land.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	redisURL, stopRedis, err := demoRedis(ctx, getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	defer stopRedis()

	sim := simulator.New(withKey(simulator.Demo()))
	defer sim.Close()
	upstream := httptest.NewServer(sim)
	defer upstream.Close()

	env := demoEnv(getenv, redisURL, upstream.URL)
	cfg, err := config.LoadWorker(args, env, stderr)
	if err != nil {
		return err
	}
	ln, err := demoListen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log := worker.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	redis.SetLogger(worker.NewRedisLogger(log.With("component", "redis")))

	var spans io.Writer
	if cfg.DemoTraces {
		spans = stdout
	}
	tp, err := startTracing(ctx, env, spans, log)
	if err != nil {
		return err
	}
	defer stopTracing(tp, log)

	httpAddr, done, err := startDemoWorker(ctx, cfg, worker.Options{Logger: log, Listener: ln, Tracer: tp.Tracer(tracerName)})
	if err != nil {
		return err
	}

	redisOpt, err := cfg.RedisSettings().Options()
	if err != nil {
		return err
	}
	rdb, err := redisconn.Client(redisOpt)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reader := results.NewReader(rdb, cfg.ResultsStream)
	from, err := reader.LastID(ctx)
	if err != nil {
		return err
	}
	n, err := enqueueSample(rdb, tp.Tracer("github.com/refreshq/refreshq/cmd/worker/demo"))
	if err != nil {
		return err
	}
	printDemoBanner(stdout, n, httpAddr, redisURL)

	go func() {
		_ = reader.Follow(ctx, from, func(_ context.Context, e results.Entry) error {
			fmt.Fprintln(stdout, describe(e))
			return nil
		})
	}()
	err = <-done
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// demoRedis is the Redis the demo runs on: redisURL when set, otherwise
// an embedded one that stop closes.
func demoRedis(ctx context.Context, redisURL string) (url string, stop func(), err error) {
	if redisURL != "" {
		return redisURL, func() {}, nil
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	// miniredis expires keys only when its clock is moved: keep it
	// moving, or locks and cooldowns would never end.
	go advanceClock(ctx, mr)
	return "redis://" + mr.Addr(), mr.Close, nil
}

// demoEnv is the environment the demo's worker reads: getenv under the
// demo's forced settings and over its defaults, with the simulator as
// every upstream.
func demoEnv(getenv func(string) string, redisURL, upstreamURL string) func(string) string {
	return func(name string) string {
		switch name {
		case "REDIS_URL":
			return redisURL
		case "REDIS_URL_FILE", "MONITOR_PASSWORD_FILE":
			return "" // the demo sets these secrets itself
		}
		for _, provider := range tasks.Providers() {
			setting, ok := strings.CutPrefix(name, config.EnvPrefix(provider)+"_")
			if !ok {
				continue
			}
			switch setting {
			case "API_KEY":
				return demoKey
			case "BASE_URL":
				return upstreamURL // never the real APIs
			case "API_KEY_FILE":
				return "" // the demo sets the key itself
			}
		}
		if v, ok := demoForced[name]; ok {
			return v
		}
		if v := getenv(name); v != "" {
			return v
		}
		return demoDefaults[name]
	}
}

// demoListen listens on addr, or on any free port when addr is taken:
// the demo should run even when another program has 8080.
func demoListen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("listen for the demo's UI: %w", err)
		}
	}
	return ln, nil
}

// startDemoWorker runs the worker in the background and returns once it
// takes tasks; done then receives what Run returns.
func startDemoWorker(ctx context.Context, cfg config.Worker, opt worker.Options) (httpAddr string, done <-chan error, err error) {
	started := make(chan string, 1)
	ran := make(chan error, 1)
	opt.Started = func(a string) { started <- a }
	go func() { ran <- worker.Run(ctx, cfg, opt) }()
	select {
	case httpAddr = <-started:
		return httpAddr, ran, nil
	case err := <-ran:
		return "", nil, err
	}
}

// printDemoBanner says what runs where and how to add work.
func printDemoBanner(stdout io.Writer, n int, httpAddr, redisURL string) {
	// The command works as printed unless the URL holds a password, which
	// is masked: the reader puts theirs back.
	shownURL := redisconn.RedactURL(redisURL)
	passwordNote := ""
	if shownURL != redisURL {
		passwordNote = "\n                 (put your Redis password in place of xxxxx)"
	}

	fmt.Fprintf(stdout, `refreshq demo: a worker against the built-in upstream simulator (never the real APIs).

  enqueued %d sample tasks; results print below as they land.
  web UI   http://%s/monitoring/    upstreams http://%s/upstreams/    metrics http://%s/metrics
  enqueue more:  REDIS_URL='%s' QUEUES=%s RESULTS_STREAM=%s go run ./cmd/enqueue hooked --account acc-42 --queue %s --wait 30s%s
  traces   the bundle.social samples carry a traceparent; worker -demo -traces prints every span as JSON here
  Ctrl-C stops. The demo keeps to queue %s and stream %s: it never touches other work in this Redis.

`, n, httpAddr, httpAddr, httpAddr, shownURL, demoForced["QUEUES"], demoStream, demoQueue, passwordNote, demoQueue, demoStream)
}

func withKey(o simulator.Options) simulator.Options {
	o.APIKey = demoKey
	return o
}

func advanceClock(ctx context.Context, mr *miniredis.Miniredis) {
	const step = 100 * time.Millisecond
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			mr.FastForward(step)
		}
	}
}

// enqueueSample enqueues onto the demo's queue one task for each of the
// simulator's demo rules, plus a payload no refreshq producer would send,
// as a foreign service might.
func enqueueSample(rdb redis.UniversalClient, tracer trace.Tracer) (int, error) {
	c := asynq.NewClientFromRedisClient(rdb)
	now := time.Now().UTC()
	var ts []*asynq.Task
	add := func(t *asynq.Task, err error) {
		if err == nil {
			ts = append(ts, t)
		}
	}
	// The bundle.social refreshes come from a producer that traces: each
	// task continues its own enqueue span, as a service's request would.
	for _, team := range []string{"team-1", "team-2", "busy-team", "flaky-team"} {
		for _, p := range []string{"TIKTOK", "INSTAGRAM", "YOUTUBE"} {
			r := tasks.BundleSocial(team, p)
			r.EnqueuedAt = now
			ctx, span := tracer.Start(context.Background(), "demo.enqueue", trace.WithSpanKind(trace.SpanKindProducer))
			r.Traceparent = tracectx.Traceparent(ctx)
			span.End()
			add(tasks.NewTask(r))
		}
	}
	for _, acc := range []string{"acc-1", "acc-2", "acc-3", "flaky-acc", "busy-acc", "gone-acc", "broken-acc", "hang-acc", "garbled-acc", "revoked-acc", "nocredit-acc", "slow-acc"} {
		r := tasks.Hooked(acc)
		r.EnqueuedAt, r.Meta = now, []byte(`{"source":"demo"}`)
		add(tasks.NewTask(r))
	}
	ts = append(ts,
		asynq.NewTask(tasks.TypeHookedAccountRefresh, []byte(`{"account":"typo"}`), asynq.MaxRetry(tasks.DefaultMaxRetry)),
		asynq.NewTask("hooked:account_delete", []byte(`{"account_id":"a1"}`), asynq.MaxRetry(tasks.DefaultMaxRetry)),
	)
	for _, t := range ts {
		if _, err := c.Enqueue(t, asynq.Queue(demoQueue)); err != nil {
			return 0, fmt.Errorf("enqueue sample task: %w", err)
		}
	}
	return len(ts), nil
}

// describe is one result as a line for people.
func describe(e results.Entry) string {
	mark := "ok  "
	if !e.Succeeded() {
		mark = "FAIL"
	}
	subject := e.Subject
	if subject == "" {
		subject = "-"
	}
	line := fmt.Sprintf("%s %-13s %-22s attempts=%d http=%d %6dms", mark, orDash(e.Provider), subject, e.Attempts, e.HTTPStatus, e.DurationMS())
	if e.TraceID != "" {
		line += " trace=" + e.TraceID
	}
	if !e.Succeeded() {
		msg := e.Error
		if len(msg) > 110 {
			msg = msg[:110] + "…"
		}
		line += fmt.Sprintf("  %s: %s", e.ErrorKind, strings.ReplaceAll(msg, "\n", " "))
	}
	return line
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
