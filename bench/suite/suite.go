package suite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Config is one benchmark run.
type Config struct {
	RedisURL    string
	Exe         string // the bench binary, re-executed as the worker child
	Concurrency int    // every variant's tasks in flight
	Tasks       int    // batch size per throughput measurement
	Latency     time.Duration
	// LatencyPhase is how long tasks are enqueued at half the variant's
	// measured throughput to measure enqueue-to-result latency.
	LatencyPhase time.Duration
	// RoundTripTasks tasks are run under MONITOR to count the commands
	// clients send per task (0: skip).
	RoundTripTasks int
	Variants       []string
	// Rounds measures every variant this many times, the variants
	// interleaved, so that a machine whose speed drifts (shared cores)
	// weighs on all of them alike; the report gives each variant's median
	// round and the spread.
	Rounds int
	// ScriptCosts measures the Redis CPU of each call a task makes.
	ScriptCosts bool
	Priority    bool
	Backlog     int // tasks waiting in low for the priority check
	Critical    int // tasks put in critical during it
	RSS         bool
	RSSSmall    int
	RSSLarge    int
	ProfileDir  string
	WorkerLog   string
}

// DefaultVariants is every throughput variant, in the order they run.
var DefaultVariants = []string{"noop", "naive-0ms", "full-0ms", "naive-50ms", "full-50ms"}

type variant struct {
	name    string
	kind    string
	latency time.Duration
}

func (c Config) variant(name string) (variant, error) {
	kind, lat, _ := strings.Cut(name, "-")
	v := variant{name: name, kind: kind}
	switch lat {
	case "", "0ms":
	case "50ms":
		v.latency = c.Latency
	default:
		return v, fmt.Errorf("variant %q: the upstream is 0ms or 50ms (-latency sets what 50ms means)", name)
	}
	if kind != kindNoop && kind != kindNaive && kind != kindFull {
		return v, fmt.Errorf("variant %q: use noop, naive-0ms, full-0ms, naive-50ms or full-50ms", name)
	}
	return v, nil
}

// suite is one run's shared state.
type suite struct {
	cfg    Config
	runID  string
	rdb    *redis.Client
	insp   *asynq.Inspector
	client *asynq.Client
	ups    map[time.Duration]*upstream
	log    io.Writer
	stderr io.Writer
}

// Run runs the benchmark and prints the report on out; progress goes to log.
func Run(ctx context.Context, cfg Config, out, log io.Writer) error {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: the benchmark takes redis:// or rediss:// URLs: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis does not answer: %w", err)
	}
	redisOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return err
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := &suite{cfg: cfg, runID: hex.EncodeToString(b), rdb: rdb, insp: asynq.NewInspector(redisOpt),
		client: asynq.NewClient(redisOpt), ups: map[time.Duration]*upstream{}, log: log, stderr: os.Stderr}
	defer s.insp.Close()
	defer s.client.Close()
	defer func() {
		for _, u := range s.ups {
			u.Close()
		}
	}()
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}

	env, err := s.environment(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, env)

	var rounds [][]row
	for i := range max(cfg.Rounds, 1) {
		if cfg.Rounds > 1 {
			fmt.Fprintf(log, "== round %d of %d\n", i+1, cfg.Rounds)
		}
		var rows []row
		for _, name := range cfg.Variants {
			v, err := cfg.variant(name)
			if err != nil {
				return err
			}
			fmt.Fprintf(log, "== %s\n", v.name)
			r := s.throughput(ctx, v)
			if r.Err != nil {
				fmt.Fprintf(log, "   %s: %v\n", v.name, r.Err)
			}
			rows = append(rows, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		rounds = append(rounds, rows)
	}
	if rows := medianRows(rounds); len(rows) > 0 {
		fmt.Fprintln(out, formatTable(rows, cfg))
		fmt.Fprintln(out, formatTargets(rows, rounds, cfg))
		fmt.Fprintln(out, formatRoundTrips(rows))
	}
	if cfg.ScriptCosts {
		fmt.Fprintf(log, "== Redis CPU per call\n")
		fmt.Fprintln(out, s.scriptCosts(ctx))
	}
	if cfg.Priority {
		fmt.Fprintf(log, "== priority\n")
		fmt.Fprintln(out, s.priority(ctx))
	}
	if cfg.RSS {
		fmt.Fprintf(log, "== rss\n")
		fmt.Fprintln(out, s.rssGrowth(ctx))
	}
	return ctx.Err()
}

// environment describes the setup, for the report.
func (s *suite) environment(ctx context.Context) (string, error) {
	info, err := s.rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	version := "?"
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = v
		}
	}
	clients, _ := s.rdb.ClientList(ctx).Result()
	others := strings.Count(clients, "\n") - 1
	load, _ := os.ReadFile("/proc/loadavg")
	var b strings.Builder
	fmt.Fprintf(&b, "Redis %s; concurrency %d for every variant; %d tasks per batch; run %s; load average %s\n",
		version, s.cfg.Concurrency, s.cfg.Tasks, s.runID, strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	if others > 0 {
		fmt.Fprintf(&b, "warning: %d other clients are connected to this Redis: INFO commandstats and MONITOR are server-wide, so their commands are counted too\n", others)
	}
	return b.String(), nil
}

func (s *suite) upstream(latency time.Duration) (*upstream, error) {
	if u, ok := s.ups[latency]; ok {
		return u, nil
	}
	u, err := newUpstream(latency)
	if err != nil {
		return nil, err
	}
	s.ups[latency] = u
	return u, nil
}

// names are one measurement's queues, stream and task id prefix, unique
// to the run so that a shared Redis is not disturbed (asynq has no key
// prefix).
type names struct {
	critical, def, low string
	stream             string
	idPrefix           string
}

func (s *suite) names(what string) names {
	base := "bench_" + s.runID + "_" + strings.ReplaceAll(what, "-", "_")
	return names{
		critical: base + "_critical", def: base + "_default", low: base + "_low",
		stream:   "bench:" + s.runID + ":" + what + ":results",
		idPrefix: "bench-" + s.runID + "-" + what,
	}
}

func (n names) queues() string {
	return n.critical + "=6," + n.def + "=3," + n.low + "=1"
}

func (s *suite) cleanup(n names) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cleanup(ctx, s.rdb, s.insp, []string{n.critical, n.def, n.low}, n.stream, n.idPrefix); err != nil {
		fmt.Fprintf(s.log, "   cleanup: %v\n", err)
	}
}

func (s *suite) startChild(kind string, n names, latency time.Duration) (*childProc, error) {
	u, err := s.upstream(latency)
	if err != nil {
		return nil, err
	}
	args := []string{"-kind", kind, "-queues", n.queues(), "-concurrency", fmt.Sprint(s.cfg.Concurrency),
		"-upstream", u.URL, "-stream", n.stream, "-worker-log", s.cfg.WorkerLog}
	return startChild(s.cfg.Exe, args, s.cfg.RedisURL, s.stderr)
}

// snapshot is the state at one end of a measured window.
type snapshot struct {
	at       time.Time
	done     int64
	cmds     map[string]int64
	redisCPU int64 // µs
	ownCPU   int64 // µs: the driver, which is also the upstream
	child    childStats
}

// counter tells how many tasks the child has finished: the no-op handler
// counts them itself, the others leave one stream entry each.
func (s *suite) counter(c *childProc, kind string, n names) func(context.Context) (int64, error) {
	if kind == kindNoop {
		return func(context.Context) (int64, error) {
			st, err := c.ask("stats")
			return st.Processed, err
		}
	}
	return func(ctx context.Context) (int64, error) { return s.rdb.XLen(ctx, n.stream).Result() }
}

func waitFor(ctx context.Context, count func(context.Context) (int64, error), target int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := count(ctx)
		if err != nil || n >= target {
			return n, err
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("only %d of %d tasks done after %s", n, target, timeout)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *suite) snap(ctx context.Context, c *childProc, count func(context.Context) (int64, error)) (snapshot, error) {
	var sn snapshot
	var err error
	if sn.done, err = count(ctx); err != nil {
		return sn, err
	}
	sn.at = time.Now()
	if sn.cmds, err = commandStats(ctx, s.rdb); err != nil {
		return sn, err
	}
	if sn.redisCPU, err = redisCPU(ctx, s.rdb); err != nil {
		return sn, err
	}
	sn.ownCPU = cpuMicros()
	sn.child, err = c.ask("stats")
	return sn, err
}

// phaseTimeout is generous: a slow machine makes a slow benchmark, never a
// failed one, unless nothing moves for this long.
func (s *suite) phaseTimeout(tasks int) time.Duration {
	return 2*time.Minute + time.Duration(tasks)*20*time.Millisecond
}

// throughput measures one variant: drain rate of a batch enqueued before
// the worker starts (measured between 10% and 90% done, so start-up and
// the tail do not count), then latency at half that rate, then commands
// per task under MONITOR.
func (s *suite) throughput(ctx context.Context, v variant) row {
	r := row{Name: v.name, Kind: v.kind, Latency: v.latency, Tasks: s.cfg.Tasks, TopPerTask: -1}
	n := s.names(v.name)
	defer s.cleanup(n)
	enq := &enqueuer{client: s.client, prefix: n.idPrefix}
	if r.Err = enq.batch(ctx, n.def, s.cfg.Tasks); r.Err != nil {
		return r
	}
	c, err := s.startChild(v.kind, n, v.latency)
	if err != nil {
		r.Err = err
		return r
	}
	defer func() {
		if err := c.stop(ctx); err != nil && r.Err == nil {
			r.Err = err
		}
	}()
	count := s.counter(c, v.kind, n)
	lo, hi := int64(s.cfg.Tasks/10), int64(s.cfg.Tasks*9/10)
	timeout := s.phaseTimeout(s.cfg.Tasks)
	if _, r.Err = waitFor(ctx, count, lo, timeout); r.Err != nil {
		return r
	}
	a, err := s.snap(ctx, c, count)
	if err != nil {
		r.Err = err
		return r
	}
	profiling := false
	if s.cfg.ProfileDir != "" {
		path, _ := filepath.Abs(filepath.Join(s.cfg.ProfileDir, v.name+".cpu.pprof"))
		if _, err := c.ask("prof " + path); err == nil {
			profiling = true
		}
	}
	if _, r.Err = waitFor(ctx, count, hi, timeout); r.Err != nil {
		return r
	}
	b, err := s.snap(ctx, c, count)
	if profiling {
		_, _ = c.ask("prof-stop")
	}
	if err != nil {
		r.Err = err
		return r
	}
	done := float64(b.done - a.done)
	r.TPS = done / b.at.Sub(a.at).Seconds()
	r.CmdsPerTask = float64(commandDelta(a.cmds, b.cmds)) / done
	r.AllocsPerTask = float64(b.child.Mallocs-a.child.Mallocs) / done
	r.RSSMB = float64(b.child.RSSKB) / 1024
	r.WorkerCPU = float64(b.child.CPU-a.child.CPU) / done
	r.RedisCPU = float64(b.redisCPU-a.redisCPU) / done
	r.DriverCPU = float64(b.ownCPU-a.ownCPU) / done
	if _, r.Err = waitFor(ctx, count, int64(s.cfg.Tasks), timeout); r.Err != nil {
		return r
	}
	fmt.Fprintf(s.log, "   %.0f tasks/s, %.1f Redis commands/task, %.0f allocs/task, RSS %.1f MB; CPU µs/task: worker %.0f, Redis %.0f, driver+upstream %.0f\n",
		r.TPS, r.CmdsPerTask, r.AllocsPerTask, r.RSSMB, r.WorkerCPU, r.RedisCPU, r.DriverCPU)

	if s.cfg.LatencyPhase > 0 {
		if r.Err = s.latency(ctx, &r, c, enq, count, v, n); r.Err != nil {
			return r
		}
		fmt.Fprintf(s.log, "   at %.0f tasks/s: p50 %s, p99 %s\n", r.LatRate, r.P50, r.P99)
	}
	if s.cfg.RoundTripTasks > 0 {
		if r.Err = s.roundTrips(ctx, &r, enq, count, n); r.Err != nil {
			return r
		}
		fmt.Fprintf(s.log, "   %.1f commands/task sent by clients, %.1f run inside scripts\n", r.TopPerTask, r.LuaPerTask)
	}
	return r
}

// latency enqueues at half the measured throughput, so every variant is
// equally loaded, and reads each task's enqueue-to-result time.
func (s *suite) latency(ctx context.Context, r *row, c *childProc, enq *enqueuer, count func(context.Context) (int64, error), v variant, n names) error {
	before, err := count(ctx)
	if err != nil {
		return err
	}
	lastID := "0"
	if v.kind == kindNoop {
		if _, err := c.ask("lat-start"); err != nil {
			return err
		}
	} else if msgs, err := s.rdb.XRevRangeN(ctx, n.stream, "+", "-", 1).Result(); err != nil {
		return err
	} else if len(msgs) > 0 {
		lastID = msgs[0].ID
	}
	r.LatRate = r.TPS / 2
	total, err := enq.paced(ctx, n.def, r.LatRate, s.cfg.LatencyPhase)
	if err != nil {
		return err
	}
	if _, err := waitFor(ctx, count, before+int64(total), s.phaseTimeout(total)); err != nil {
		return err
	}
	var lat []int64
	if v.kind == kindNoop {
		st, err := c.ask("lat")
		if err != nil {
			return err
		}
		lat = st.Latencies
	} else if lat, err = streamLatencies(ctx, s.rdb, n.stream, lastID); err != nil {
		return err
	}
	r.LatN = len(lat)
	r.P50, r.P99 = percentile(lat, 50), percentile(lat, 99)
	return nil
}

// streamLatencies reads entries after id: finished_at less the enqueue
// time carried in the task id.
func streamLatencies(ctx context.Context, rdb *redis.Client, stream, after string) ([]int64, error) {
	var out []int64
	for {
		msgs, err := rdb.XRangeN(ctx, stream, "("+after, "+", 1000).Result()
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			return out, nil
		}
		for _, m := range msgs {
			id, _ := m.Values["task_id"].(string)
			fin, _ := m.Values["finished_at"].(string)
			at, ok := enqueuedAt(id)
			t, err := time.Parse(time.RFC3339Nano, fin)
			if ok && err == nil {
				out = append(out, t.UnixNano()-at)
			}
		}
		after = msgs[len(msgs)-1].ID
	}
}

// roundTrips runs RoundTripTasks tasks under MONITOR: the queue is paused
// while they are enqueued so the enqueues are not counted, then MONITOR
// starts and the queue is let go.
func (s *suite) roundTrips(ctx context.Context, r *row, enq *enqueuer, count func(context.Context) (int64, error), n names) error {
	m := s.cfg.RoundTripTasks
	if err := s.insp.PauseQueue(n.def); err != nil {
		return err
	}
	if err := enq.batch(ctx, n.def, m); err != nil {
		return err
	}
	before, err := count(ctx)
	if err != nil {
		return err
	}
	// The driver's own commands go over one connection whose address the
	// counts skip.
	opt := *s.rdb.Options()
	opt.PoolSize, opt.MinIdleConns = 1, 1
	own := redis.NewClient(&opt)
	defer own.Close()
	info, err := own.ClientInfo(ctx).Result()
	if err != nil {
		return err
	}
	mc := &monitorCounts{top: map[string]int64{}, skip: info.Addr}
	mon, err := startMonitor(ctx, &opt, mc)
	if err != nil {
		return err
	}
	defer mon.Close()
	time.Sleep(200 * time.Millisecond) // MONITOR is on before the first task runs
	mc.reset()
	if err := own.Del(ctx, "asynq:{"+n.def+"}:paused").Err(); err != nil {
		return err
	}
	ownCount := count
	if r.Kind != kindNoop {
		ownCount = func(ctx context.Context) (int64, error) { return own.XLen(ctx, n.stream).Result() }
	}
	_, err = waitFor(ctx, ownCount, before+int64(m), s.phaseTimeout(m))
	time.Sleep(100 * time.Millisecond) // the last lines are on their way
	mon.Close()
	if err != nil {
		return err
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	var top int64
	r.TopBreakdown = map[string]float64{}
	for name, calls := range mc.top {
		top += calls
		r.TopBreakdown[name] = float64(calls) / float64(m)
	}
	r.TopPerTask = float64(top) / float64(m)
	r.LuaPerTask = float64(mc.inLua) / float64(m)
	return nil
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}
