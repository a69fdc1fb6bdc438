package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/testenv"
	"github.com/refreshq/refreshq/results"
)

// The fleet-quota scenario: 3 worker processes, an upstream enforcing 100
// requests/s per API key, and the fleet's budget set to exactly that
// (BENCH_RATE overrides it, to try other budgets against the same upstream).
const (
	workers = 3
	quota   = 100 // requests per second the upstream accepts
	// The simulator answers after latency plus up to jitter, so requests
	// overlap as they would against a real API.
	latency = 30 * time.Millisecond
	jitter  = 40 * time.Millisecond
	// The steady-state share leaves out the first seconds (the first
	// second may take the whole quota at once) and the last ones (the
	// backlog runs out).
	warmup    = 2 * time.Second
	tailSkip  = 2 * time.Second
	maxRunFor = 5 * time.Minute
)

// BenchmarkFleetQuota runs the scenario b.N times (use -benchtime 1x) with
// BENCH_TASKS tasks (default 2500, about 25 s at the quota) and reports:
//
//	quota_%        accepted requests per second in the steady state / 100
//	429_%          share of all upstream requests answered 429
//	req/s          those accepted requests per second
//	busiest_1s     most requests the upstream saw in any 1 s interval
//	busiest_100ms  the same in any 100 ms: how bursty the fleet is
//
// It needs REDIS_URL. It keeps to a queue, a results stream and an API key
// of its own (so the budget's Redis keys are its own too) in whichever
// database REDIS_URL names, and deletes what it wrote.
func BenchmarkFleetQuota(b *testing.B) {
	redisURL := testenv.RequireRedisURL(b)
	nTasks := 2500
	if v := os.Getenv("BENCH_TASKS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_TASKS=%q is not a whole number ≥ 1", v)
		}
		nTasks = n
	}
	budget := "100/1s"
	if v := os.Getenv("BENCH_RATE"); v != "" {
		budget = v
	}
	bin := buildWorker(b)

	var sumQuota, sum429, sumRate float64
	most, most100 := 0, 0
	for range b.N {
		r := runFleet(b, bin, redisURL, budget, nTasks)
		sumQuota += r.quotaShare
		sum429 += r.share429
		sumRate += r.steadyRate
		most, most100 = max(most, r.busiest), max(most100, r.busiest100ms)
		b.Logf("HOOKED_RATE=%s, %d tasks: %d requests (%d accepted, %d 429) in %s; steady %.1f req/s = %.1f%% of the quota; overall %.1f req/s; 429s %.2f%%; busiest 1 s %d, busiest 100 ms %d; load %s",
			budget, nTasks, r.requests, r.accepted, r.n429, r.span.Round(time.Millisecond), r.steadyRate, 100*r.quotaShare,
			r.overallRate, 100*r.share429, r.busiest, r.busiest100ms, loadAvg())
	}
	n := float64(b.N)
	b.ReportMetric(100*sumQuota/n, "quota_%")
	b.ReportMetric(100*sum429/n, "429_%")
	b.ReportMetric(sumRate/n, "req/s")
	b.ReportMetric(float64(most), "busiest_1s")
	b.ReportMetric(float64(most100), "busiest_100ms")
	b.ReportMetric(0, "ns/op") // one op is a whole run: its time says nothing
}

type fleetResult struct {
	requests, accepted, n429 int
	busiest, busiest100ms    int
	span                     time.Duration
	steadyRate, overallRate  float64
	quotaShare, share429     float64
}

func runFleet(b *testing.B, bin, redisURL, budget string, nTasks int) fleetResult {
	b.Helper()
	id := randomHex(6)
	queue := "bench_rl_" + id
	stream := "bench:rl:" + id + ":results"
	apiKey := "bench-rl-key-" + id

	sim := simulator.New(simulator.Options{
		Prefix:    "/gw",
		APIKey:    apiKey,
		Latency:   latency,
		Jitter:    jitter,
		RateLimit: []simulator.Window{{N: quota, Per: time.Second}},
	})
	srv := httptest.NewServer(sim)
	defer func() { sim.Close(); srv.Close() }()

	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		b.Fatalf("REDIS_URL: %v", err)
	}
	rdb := opt.MakeRedisClient().(redis.UniversalClient)
	defer rdb.Close()
	ids := redistest.Enqueue(b, opt, queue, nTasks)
	defer cleanup(rdb, opt, queue, stream, ids)

	env := append(os.Environ(),
		"REDIS_URL="+redisURL,
		"HOOKED_API_KEY="+apiKey,
		"HOOKED_BASE_URL="+srv.URL+"/gw",
		"HOOKED_RATE="+budget,
		"BUNDLE_SOCIAL_API_KEY=",
		"QUEUES="+queue+"=1",
		"RESULTS_STREAM="+stream,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
	)
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	logs := make([]*strings.Builder, workers)
	for i := range workers {
		cmd := exec.Command(bin)
		cmd.Env = append(slices.Clone(env), "HTTP_ADDR=127.0.0.1:"+strconv.Itoa(freePort(b)))
		logs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = logs[i], logs[i]
		if err := cmd.Start(); err != nil {
			b.Fatalf("start worker: %v", err)
		}
		procs = append(procs, cmd)
	}

	ctx := context.Background()
	deadline := time.Now().Add(maxRunFor)
	for {
		n, err := rdb.XLen(ctx, stream).Result()
		if err != nil {
			b.Fatalf("read results: %v", err)
		}
		if n >= int64(nTasks) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d results after %s", n, nTasks, maxRunFor)
		}
		time.Sleep(100 * time.Millisecond)
	}
	failed := 0
	for _, m := range rdb.XRange(ctx, stream, "-", "+").Val() {
		if m.Values["status"] != string(results.StatusSucceeded) {
			failed++
		}
	}
	if failed > 0 {
		b.Errorf("%d tasks failed; worker logs:\n%s", failed, logs[0].String())
	}
	return measure(sim.Calls())
}

// measure reads the upstream's request log. The steady state leaves out
// the first seconds (the first second may take the whole quota at once,
// which flatters the share) and the last ones (the backlog runs out).
func measure(calls []simulator.Call) fleetResult {
	var r fleetResult
	if len(calls) == 0 {
		return r
	}
	slices.SortFunc(calls, func(a, b simulator.Call) int { return a.At.Compare(b.At) })
	first, last := calls[0].At, calls[len(calls)-1].At
	for _, c := range calls {
		r.requests++
		switch c.Status {
		case http.StatusOK:
			r.accepted++
		case http.StatusTooManyRequests:
			r.n429++
		}
	}
	r.span = last.Sub(first)
	if r.span > 0 {
		r.overallRate = float64(r.accepted) / r.span.Seconds()
	}
	r.share429 = float64(r.n429) / float64(r.requests)

	// The steady rate counts accepted requests in intervals of a whole
	// number K of seconds: one holds at most K×quota (split it into K
	// one-second intervals), so no share can exceed 100%. The fleet sends
	// in bursts, and how many bursts an interval catches depends on where
	// it starts, so the share is averaged over starts spread across a
	// second.
	from := first.Add(warmup)
	k := last.Add(-tailSkip).Sub(from).Truncate(time.Second) - time.Second
	if k < time.Second {
		return r
	}
	const starts = 100
	total := 0
	for i := range starts {
		s := from.Add(time.Duration(i) * time.Second / starts)
		e := s.Add(k)
		for _, c := range calls {
			if c.Status == http.StatusOK && !c.At.Before(s) && c.At.Before(e) {
				total++
			}
		}
	}
	r.steadyRate = float64(total) / starts / k.Seconds()
	r.quotaShare = r.steadyRate / quota
	r.busiest = busiest(calls, time.Second)
	r.busiest100ms = busiest(calls, 100*time.Millisecond)
	return r
}

// busiest is the most requests in any interval [t, t+per) of calls sorted
// by arrival, counted as the simulator's sliding window counts them.
func busiest(calls []simulator.Call, per time.Duration) int {
	most, j := 0, 0
	for i := range calls {
		for j < len(calls) && calls[j].At.Sub(calls[i].At) < per {
			j++
		}
		most = max(most, j-i)
	}
	return most
}

// cleanup removes what a run wrote: its queue, its results stream and the
// per-task ledger and result index records. The budget's keys expire on
// their own within a second.
func cleanup(rdb redis.UniversalClient, opt asynq.RedisConnOpt, queue, stream string, ids []string) {
	ctx := context.Background()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	_ = insp.DeleteQueue(queue, true)
	for chunk := range slices.Chunk(ids, 500) {
		keys := make([]string, 0, 2*len(chunk))
		for _, id := range chunk {
			keys = append(keys, ledger.DefaultPrefix+id, results.IndexKey(stream, id))
		}
		rdb.Del(ctx, keys...)
	}
	rdb.Del(ctx, stream)
}

func buildWorker(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "worker")
	// No -race: this measures the worker as it is deployed.
	out, err := exec.Command("go", "build", "-o", bin, "github.com/refreshq/refreshq/cmd/worker").CombinedOutput()
	if err != nil {
		b.Fatalf("build cmd/worker: %v\n%s", err, out)
	}
	return bin
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
