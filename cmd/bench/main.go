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
	cfg := suite.Config{RedisURL: getenv("REDIS_URL"), WorkerEnv: map[string]string{}}
	fs.IntVar(&cfg.Concurrency, "concurrency", 50, "tasks in flight, the same for every variant")
	fs.IntVar(&cfg.Tasks, "tasks", 20_000, "tasks per throughput batch")
	fs.DurationVar(&cfg.Latency, "latency", 50*time.Millisecond, "the slow upstream's latency (variants ending in -50ms, and the scenarios)")
	fs.StringVar(&cfg.Provider, "task", "bundle_social", "the batch's tasks: bundle_social (880-byte answers) or hooked (549-byte answers, for comparison)")
	fs.StringVar(&cfg.Budget, "budget", "1000000/1s", "full-budget's BUNDLE_SOCIAL_RATE: a budget large enough never to refuse")
	fs.DurationVar(&cfg.LatencyPhase, "latency-phase", 0, "how long to enqueue at half the measured rate to measure latency (0: skip)")
	fs.IntVar(&cfg.RoundTripTasks, "roundtrip-tasks", 0, "tasks run under MONITOR to count the commands clients send (0: skip)")
	fs.IntVar(&cfg.Rounds, "rounds", 2, "measure every variant this many times, interleaved, and report the median round and the spread")
	variants := fs.String("variants", strings.Join(suite.DefaultVariants, ","), "throughput variants to run, comma-separated (empty: none): noop, or KIND-0ms or KIND-50ms with KIND naive, full, full-budget or bullmq")
	fs.StringVar(&cfg.WorkerBin, "worker-bin", "", "worker binary to run (default: go build ./cmd/worker once)")
	fs.StringVar(&cfg.WorkerLog, "worker-log", "file", "where the worker binary's info logs go: file (as deployed) or null (/dev/null)")
	fs.Func("worker-env", "NAME=VALUE added to every worker binary's environment (repeatable), e.g. LOG_LEVEL=warn", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: write NAME=VALUE", s)
		}
		cfg.WorkerEnv[k] = v
		return nil
	})
	bullmqDir := fs.String("bullmq-dir", "", "the BullMQ script's directory, with node_modules (default: bench/bullmq in the repository)")
	fs.BoolVar(&cfg.ScriptCosts, "script-costs", false, "measure the Redis CPU of each call the worker and the naive handler make per task")
	fs.BoolVar(&cfg.Priority, "priority", true, "priority scenario: critical tasks behind a backlog in low that saturates the budget")
	fs.BoolVar(&cfg.Tenants, "tenants", true, "tenant scenario: tenant-b's tasks behind tenant-a's backlog in one queue")
	fs.IntVar(&cfg.ScenarioRate, "scenario-rate", 10, "the scenarios' budget and upstream limit, requests per second")
	fs.IntVar(&cfg.Backlog, "backlog", 600, "priority scenario: tasks waiting in low")
	fs.IntVar(&cfg.Critical, "critical", 10, "priority scenario: tasks put in critical, one a second")
	fs.IntVar(&cfg.TenantA, "tenant-a", 400, "tenant scenario: tenant-a's backlog")
	fs.IntVar(&cfg.TenantB, "tenant-b", 10, "tenant scenario: tenant-b's tasks, enqueued at once")
	fs.BoolVar(&cfg.RSS, "rss", false, "also run the long RSS growth check (-rss-large tasks; about 20 minutes for a million here)")
	fs.IntVar(&cfg.RSSSmall, "rss-small", 100_000, "RSS growth check: the first sample")
	fs.IntVar(&cfg.RSSLarge, "rss-large", 1_000_000, "RSS growth check: tasks in all")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "write a CPU profile of each Go worker's measured window into this directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q; bench takes only flags (see -h)", fs.Arg(0))}
	}
	if cfg.RedisURL == "" {
		return usageError{errors.New("REDIS_URL is not set; point it at a Redis the benchmark may use alone, e.g. REDIS_URL=redis://127.0.0.1:6379/15")}
	}
	if cfg.Concurrency < 1 || cfg.Rounds < 1 || cfg.Tasks < 100 || cfg.Latency <= 0 || cfg.RSSSmall < 1 || cfg.RSSLarge < cfg.RSSSmall {
		return usageError{errors.New("need -concurrency ≥ 1, -rounds ≥ 1, -tasks ≥ 100, -latency > 0 and 1 ≤ -rss-small ≤ -rss-large")}
	}
	if cfg.ScenarioRate < 1 || cfg.Backlog < 1 || cfg.Critical < 1 || cfg.TenantA < 1 || cfg.TenantB < 1 {
		return usageError{errors.New("need -scenario-rate, -backlog, -critical, -tenant-a and -tenant-b ≥ 1")}
	}
	if cfg.Provider != "bundle_social" && cfg.Provider != "hooked" {
		return usageError{fmt.Errorf("-task %q: use bundle_social or hooked", cfg.Provider)}
	}
	if cfg.WorkerLog != "file" && cfg.WorkerLog != "null" {
		return usageError{fmt.Errorf("-worker-log %q: use file or null", cfg.WorkerLog)}
	}
	for v := range strings.SplitSeq(*variants, ",") {
		if v = strings.TrimSpace(v); v != "" {
			cfg.Variants = append(cfg.Variants, v)
		}
	}
	if err := suite.CheckVariants(cfg); err != nil {
		return usageError{err}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary to run the naive handler: %w", err)
	}
	cfg.Exe = exe
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if cfg.WorkerBin == "" || *bullmqDir == "" {
		if cfg.Root, err = suite.ModuleRoot(wd); err != nil {
			return usageError{err}
		}
	}
	if *bullmqDir != "" {
		cfg.BullMQDir = *bullmqDir
	}
	return suite.Run(ctx, cfg, stdout, stderr)
}
