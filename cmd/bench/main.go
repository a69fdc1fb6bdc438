package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/refreshq/refreshq/bench/suite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "-child" {
		return suite.RunChild(ctx, args[1:], getenv, stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := suite.Config{RedisURL: getenv("REDIS_URL")}
	fs.IntVar(&cfg.Concurrency, "concurrency", 50, "tasks in flight, the same for every variant")
	fs.IntVar(&cfg.Tasks, "tasks", 20_000, "tasks per throughput batch")
	fs.DurationVar(&cfg.Latency, "latency", 50*time.Millisecond, "the slow upstream's latency")
	fs.DurationVar(&cfg.LatencyPhase, "latency-phase", 5*time.Second, "how long to enqueue at half the measured rate to measure latency (0: skip)")
	fs.IntVar(&cfg.RoundTripTasks, "roundtrip-tasks", 2000, "tasks run under MONITOR to count the commands clients send (0: skip)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "measure every variant this many times, interleaved, and report the median round and the spread")
	variants := fs.String("variants", strings.Join(suite.DefaultVariants, ","), "throughput variants to run, comma-separated (empty: none)")
	fs.BoolVar(&cfg.ScriptCosts, "script-costs", true, "measure the Redis CPU of each call the full worker and the naive handler make per task")
	fs.BoolVar(&cfg.Priority, "priority", true, "check that critical tasks overtake a backlog in low")
	fs.IntVar(&cfg.Backlog, "backlog", 100_000, "tasks waiting in low for the priority check")
	fs.IntVar(&cfg.Critical, "critical", 50, "tasks put in critical during the priority check")
	fs.BoolVar(&cfg.RSS, "rss", false, "also run the long RSS growth check (-rss-large tasks; about 20 minutes for a million here)")
	fs.IntVar(&cfg.RSSSmall, "rss-small", 100_000, "RSS growth check: the first sample")
	fs.IntVar(&cfg.RSSLarge, "rss-large", 1_000_000, "RSS growth check: tasks in all")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "write a CPU profile of each worker's measured window into this directory")
	fs.StringVar(&cfg.WorkerLog, "worker-log", "discard", "full worker's info logs: discard (formatted as JSON, then dropped), stderr, or off")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if cfg.RedisURL == "" {
		return usageError{errors.New("REDIS_URL is not set; point it at a Redis the benchmark may use alone, e.g. REDIS_URL=redis://127.0.0.1:6379/15")}
	}
	if cfg.Concurrency < 1 || cfg.Rounds < 1 || cfg.Tasks < 100 || cfg.Latency <= 0 || cfg.RSSSmall < 1 || cfg.RSSLarge < cfg.RSSSmall {
		return usageError{errors.New("need -concurrency ≥ 1, -rounds ≥ 1, -tasks ≥ 100, -latency > 0 and 1 ≤ -rss-small ≤ -rss-large")}
	}
	for v := range strings.SplitSeq(*variants, ",") {
		if v = strings.TrimSpace(v); v != "" {
			cfg.Variants = append(cfg.Variants, v)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary to run workers: %w", err)
	}
	cfg.Exe = exe
	return suite.Run(ctx, cfg, stdout, stderr)
}
