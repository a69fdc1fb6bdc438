package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/buildinfo"
	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/internal/tracing"
	"github.com/refreshq/refreshq/internal/worker"
)

// run loads the configuration and runs the worker (or the demo) until ctx
// ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-healthcheck" || args[0] == "--healthcheck") {
		return healthcheck(ctx, getenv)
	}
	if hasFlag(args, "version") {
		fmt.Fprintln(stdout, "worker", buildinfo.Read())
		return nil
	}
	if isDemo(args) {
		return runDemo(ctx, args, getenv, stdout, stderr)
	}
	cfg, err := config.LoadWorker(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := worker.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	// go-redis logs through a process-wide logger of its own; send it to
	// ours so its lines are structured and quieted like the rest.
	redis.SetLogger(worker.NewRedisLogger(log.With("component", "redis")))
	tp, err := startTracing(ctx, getenv, nil, log)
	if err != nil {
		return err
	}
	defer stopTracing(tp, log)
	return worker.Run(ctx, cfg, worker.Options{Logger: log, Tracer: tp.Tracer(tracerName)})
}

// tracerName names the instrumentation scope of the worker's spans.
const tracerName = "github.com/refreshq/refreshq/handlers"

// startTracing builds the tracer provider the OTEL_* variables ask for
// (spans on w when w is set).
func startTracing(ctx context.Context, getenv func(string) string, w io.Writer, log *slog.Logger) (*tracing.Provider, error) {
	tp, err := tracing.Setup(ctx, getenv, tracing.Options{Stdout: w})
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	if tp.Exporting != "" {
		log.Info("exporting traces", "exporter", tp.Exporting)
	}
	return tp, nil
}

// stopTracing exports the spans still buffered before the process ends.
func stopTracing(tp *tracing.Provider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("exporting the last spans failed", "err", err)
	}
}

// hasFlag reports whether the boolean flag name is among args.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		switch a {
		case "-" + name, "--" + name, "-" + name + "=true", "--" + name + "=true":
			return true
		}
	}
	return false
}

func isDemo(args []string) bool {
	for _, a := range args {
		switch a {
		case "-demo", "--demo", "-demo=true", "--demo=true":
			return true
		}
	}
	return false
}
