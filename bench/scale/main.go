// Command scale measures how refreshq's throughput grows with the number
// of worker processes: for each N it starts N real `worker` processes
// (built without the race detector) on one Redis, against the upstream
// simulator with a fixed latency, releases a backlog of tasks at once and
// times until every result is in the stream.
//
//	go run ./bench/scale -workers 1,2,3,4 -tasks 3000
//
// It starts a redis-server of its own on a free port unless -redis is
// given (that Redis is flushed). It is a benchmark, not a test: it prints
// a Markdown table and never fails because the machine is slow. See
// docs/scale.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type config struct {
	workers     []int
	tasks       int
	concurrency int
	latency     time.Duration
	redisURL    string
	workerBin   string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workers := fs.String("workers", "1,2,3,4", "worker process counts to measure, comma-separated")
	fs.IntVar(&c.tasks, "tasks", 3000, "tasks per measurement")
	fs.IntVar(&c.concurrency, "concurrency", 10, "WORKER_CONCURRENCY of each worker")
	fs.DurationVar(&c.latency, "latency", 50*time.Millisecond, "upstream latency")
	fs.StringVar(&c.redisURL, "redis", "", "Redis to use (it is flushed); empty starts a redis-server of its own")
	fs.StringVar(&c.workerBin, "worker-bin", "", "worker binary; empty builds ./cmd/worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-workers: %q is not a count ≥ 1", f)
		}
		c.workers = append(c.workers, n)
	}

	dir, err := os.MkdirTemp("", "refreshq-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if c.workerBin == "" {
		c.workerBin = filepath.Join(dir, "worker")
		fmt.Fprintln(stderr, "building cmd/worker")
		if out, err := exec.Command("go", "build", "-o", c.workerBin, "./cmd/worker").CombinedOutput(); err != nil {
			return fmt.Errorf("build worker (run from the module root): %v\n%s", err, out)
		}
	}
	if c.redisURL == "" {
		url, stopRedis, err := startRedis(dir)
		if err != nil {
			return err
		}
		defer stopRedis()
		c.redisURL = url
	}

	sim := simulator.New(simulator.Options{Latency: c.latency})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()

	opt, err := asynq.ParseRedisURI(c.redisURL)
	if err != nil {
		return err
	}
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	if v, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(v, "\r\n") {
			if s, ok := strings.CutPrefix(line, "redis_version:"); ok {
				fmt.Fprintf(stdout, "Redis %s; upstream latency %s; WORKER_CONCURRENCY %d; %d tasks per run\n\n", s, c.latency, c.concurrency, c.tasks)
			}
		}
	}
	fmt.Fprintln(stdout, "| workers | tasks/s | seconds | vs 1 worker | ceiling (concurrency / latency) |")
	fmt.Fprintln(stdout, "|--:|--:|--:|--:|--:|")
	var base float64
	for _, n := range c.workers {
		rate, took, err := measure(ctx, c, n, opt, rdb, srv.URL, stderr)
		if err != nil {
			return fmt.Errorf("%d workers: %w", n, err)
		}
		if base == 0 {
			base = rate / float64(n)
		}
		ceiling := float64(n*c.concurrency) / c.latency.Seconds()
		fmt.Fprintf(stdout, "| %d | %.0f | %.1f | %.2f× | %.0f |\n", n, rate, took.Seconds(), rate/base, ceiling)
	}
	return nil
}

// measure starts n workers, releases c.tasks tasks to them at once and
// returns results per second.
func measure(ctx context.Context, c config, n int, opt asynq.RedisConnOpt, rdb redis.UniversalClient, simURL string, stderr io.Writer) (float64, time.Duration, error) {
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return 0, 0, err
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	for range n {
		p, err := startWorker(ctx, c, simURL)
		if err != nil {
			return 0, 0, err
		}
		procs = append(procs, p)
	}

	insp := asynq.NewInspector(opt)
	defer insp.Close()
	client := asynq.NewClient(opt)
	defer client.Close()
	// Queue the whole backlog while the queue is paused, so the clock
	// starts with every worker idle and every task waiting.
	if err := insp.PauseQueue(tasks.DefaultQueue); err != nil {
		return 0, 0, fmt.Errorf("pause queue: %w", err)
	}
	for i := range c.tasks {
		task, err := tasks.NewTask(tasks.Hooked(fmt.Sprintf("acct-%d", i)))
		if err != nil {
			return 0, 0, err
		}
		if _, err := client.EnqueueContext(ctx, task); err != nil {
			return 0, 0, fmt.Errorf("enqueue: %w", err)
		}
	}
	start := time.Now()
	if err := insp.UnpauseQueue(tasks.DefaultQueue); err != nil {
		return 0, 0, fmt.Errorf("unpause queue: %w", err)
	}
	for {
		got, err := rdb.XLen(ctx, results.DefaultStream).Result()
		if err != nil {
			return 0, 0, err
		}
		if int(got) >= c.tasks {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return 0, 0, fmt.Errorf("only %d of %d results after 10 minutes", got, c.tasks)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	fmt.Fprintf(stderr, "%d workers: %d tasks in %s\n", n, c.tasks, took.Round(time.Millisecond))
	return float64(c.tasks) / took.Seconds(), took, nil
}

// startWorker runs one worker process and waits until /readyz says 200.
func startWorker(ctx context.Context, c config, simURL string) (*exec.Cmd, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(c.workerBin)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+c.redisURL,
		"HOOKED_API_KEY=bench-key",
		"HOOKED_BASE_URL="+simURL,
		"HOOKED_RATE=off", // the budget is not what is measured
		"BUNDLE_SOCIAL_API_KEY=bench-key",
		"BUNDLE_SOCIAL_BASE_URL="+simURL,
		"BUNDLE_SOCIAL_RATE=off",
		"WORKER_CONCURRENCY="+strconv.Itoa(c.concurrency),
		"HTTP_ADDR="+addr,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, nil
			}
		}
		select {
		case <-ctx.Done():
			return cmd, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = cmd.Process.Kill()
	return nil, errors.New("worker not ready within 30s")
}

// startRedis runs a redis-server of the benchmark's own, without
// persistence, on a free port.
func startRedis(dir string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server (is it installed?): %w", err)
	}
	stopRedis := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer rdb.Close()
	for range 200 {
		if rdb.Ping(context.Background()).Err() == nil {
			return url, stopRedis, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	stopRedis()
	return "", nil, errors.New("redis-server did not answer within 5s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
