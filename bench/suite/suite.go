package suite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/tasks"
)

// Config is one benchmark run.
type Config struct {
	RedisURL string
	Exe      string // the bench binary, re-executed as the naive and no-op child
	// Root is the repository: cmd/worker is built from it and
	// bench/bullmq run in it.
	Root string
	// BullMQDir is bench/bullmq, with node_modules; default under Root.
	BullMQDir string
	// WorkerBin, when set, is a worker binary to run instead of building
	// one from Root.
	WorkerBin string
	// WorkerLog is where the worker binary's info logs go: "file" (a file
	// in a temporary directory, as deployed) or "null" (/dev/null).
	WorkerLog string
	// WorkerEnv is added to every worker binary's environment, after the
	// benchmark's own settings (so it can override them).
	WorkerEnv map[string]string
	// Provider is the tasks': tasks.ProviderBundleSocial, or
	// tasks.ProviderHooked to compare with a hooked.so batch.
	Provider    string
	Concurrency int // every variant's tasks in flight
	Tasks       int // batch size per throughput measurement
	Latency     time.Duration
	// Budget is full-budget's BUNDLE_SOCIAL_RATE: large enough never to
	// refuse.
	Budget string
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
	// Priority and Tenants run the two scenarios under a saturated
	// ScenarioRate budget (scenario.go).
	Priority     bool
	Tenants      bool
	ScenarioRate int // requests per second the key allows
	Backlog      int // tasks waiting in low for the priority scenario
	Critical     int // critical tasks, one a second
	TenantA      int // tenant A's backlog in the tenant scenario
	TenantB      int // tenant B's tasks, enqueued once A saturates the budget
	RSS          bool
	RSSSmall     int
	RSSLarge     int
	ProfileDir   string
}

// DefaultVariants is every throughput variant run unless -variants says
// otherwise, in the order they run.
var DefaultVariants = []string{"naive-0ms", "full-0ms", "full-budget-0ms", "bullmq-0ms", "naive-50ms", "full-budget-50ms"}

// variantKinds are the kinds a variant name may start with.
var variantKinds = []string{kindNoop, kindNaive, kindFull, kindFullBudget, kindBullMQ}

type variant struct {
	name    string
	kind    string
	latency time.Duration
}

func (c Config) variant(name string) (variant, error) {
	if name == kindNoop {
		return variant{name: name, kind: kindNoop}, nil
	}
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return variant{}, fmt.Errorf("variant %q: write KIND-0ms or KIND-50ms, KIND one of %s (or noop)", name, strings.Join(variantKinds[1:], ", "))
	}
	v := variant{name: name, kind: name[:i]}
	switch name[i+1:] {
	case "0ms":
	case "50ms":
		v.latency = c.Latency
	default:
		return v, fmt.Errorf("variant %q: the upstream is 0ms or 50ms (-latency sets what 50ms means)", name)
	}
	if !slices.Contains(variantKinds[1:], v.kind) {
		return v, fmt.Errorf("variant %q: kind %q is not one of %s", name, v.kind, strings.Join(variantKinds[1:], ", "))
	}
	return v, nil
}

// CheckVariants says which variant name is wrong, before anything runs.
func CheckVariants(cfg Config) error {
	for _, name := range cfg.Variants {
		if _, err := cfg.variant(name); err != nil {
			return err
		}
	}
	return nil
}

// ModuleRoot is the refreshq repository at or above dir.
func ModuleRoot(dir string) (string, error) { return moduleRoot(dir) }

// suite is one run's shared state.
type suite struct {
	cfg       Config
	runID     string
	rdb       *redis.Client
	insp      *asynq.Inspector
	client    *asynq.Client
	ups       map[upstreamOptions]*upstream
	workerBin string
	tmp       string // worker logs and the built binary
	bullmq    bullmqScript
	apiKey    string // the worker's bundle.social key: its budget keys are the run's own
	log       io.Writer
	stderr    io.Writer
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
		client: asynq.NewClient(redisOpt), ups: map[upstreamOptions]*upstream{}, log: log, stderr: os.Stderr,
		bullmq: bullmqScript{dir: cfg.BullMQDir, redisURL: cfg.RedisURL}}
	if s.bullmq.dir == "" {
		s.bullmq.dir = filepath.Join(cfg.Root, "bench", "bullmq")
	}
	s.apiKey = "bench-" + s.runID
	defer s.insp.Close()
	defer s.client.Close()
	defer func() {
		for _, u := range s.ups {
			u.Close()
		}
	}()
	defer s.cleanupBudget()
	if s.tmp, err = os.MkdirTemp("", "refreshq-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(s.tmp)
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	s.workerBin = cfg.WorkerBin
	if s.workerBin == "" {
		fmt.Fprintf(log, "== go build ./cmd/worker\n")
		if s.workerBin, err = buildWorker(ctx, cfg.Root, s.tmp); err != nil {
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
		fmt.Fprintln(out, formatRounds(rounds))
		fmt.Fprintln(out, formatTargets(rows, rounds, cfg))
		fmt.Fprintln(out, formatRoundTrips(rows))
		fmt.Fprintln(out, formatCmdCosts(rows))
	}
	if cfg.ScriptCosts {
		fmt.Fprintf(log, "== Redis CPU per call\n")
		fmt.Fprintln(out, s.scriptCosts(ctx))
	}
	if cfg.Priority {
		fmt.Fprintf(log, "== priority scenario\n")
		fmt.Fprintln(out, s.priority(ctx))
	}
	if cfg.Tenants {
		fmt.Fprintf(log, "== tenant scenario\n")
		fmt.Fprintln(out, s.tenants(ctx))
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
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "%s UTC, host %s, %d CPUs; Redis %s; concurrency %d for every variant; %d %s tasks per batch; run %s; load average %s\n",
		time.Now().UTC().Format("2006-01-02 15:04"), host, numCPU(), version, s.cfg.Concurrency, s.cfg.Tasks, s.cfg.Provider, s.runID,
		strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "))
	fmt.Fprintf(&b, "\nfull and full-budget: the worker binary (%s), env WORKER_CONCURRENCY=%d, the provider's _RATE=off or %s, info logs to %s, everything else default%s\n",
		s.workerBin, s.cfg.Concurrency, s.cfg.Budget, map[string]string{"file": "a file", "null": "/dev/null"}[s.cfg.WorkerLog], formatEnv(s.cfg.WorkerEnv))
	if others > 0 {
		fmt.Fprintf(&b, "\nwarning: %d other clients are connected to this Redis: INFO commandstats and MONITOR are server-wide, so their commands are counted too\n", others)
	}
	return b.String(), nil
}

func formatEnv(env map[string]string) string {
	if len(env) == 0 {
		return ""
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + env[k]
	}
	return " but " + strings.Join(parts, " ")
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor\t") + 1
}

func (s *suite) upstream(opt upstreamOptions) (*upstream, error) {
	if u, ok := s.ups[opt]; ok {
		return u, nil
	}
	u, err := newUpstream(opt)
	if err != nil {
		return nil, err
	}
	s.ups[opt] = u
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

// queues are the default QUEUES' three queues and weights, under the
// run's names.
func (n names) queues() string {
	return n.critical + "=6," + n.def + "=3," + n.low + "=1"
}

func (s *suite) cleanup(n names) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cleanup(ctx, s.rdb, s.insp, []string{n.critical, n.def, n.low}, n.stream, n.idPrefix); err != nil {
		fmt.Fprintf(s.log, "   cleanup: %v\n", err)
	}
	if err := cleanupBullMQ(ctx, s.rdb, n.def); err != nil {
		fmt.Fprintf(s.log, "   cleanup: %v\n", err)
	}
}

// cleanupBudget removes the run's budget, cooldown and breaker keys: the
// run's API key and upstream URLs are its own.
func (s *suite) cleanupBudget() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	patterns := []string{ratelimit.DefaultPrefix + "*" + ratelimit.KeyID(s.apiKey) + "*"}
	for _, u := range s.ups {
		patterns = append(patterns, ratelimit.DefaultPrefix+"*"+ratelimit.EndpointID(u.URL)+"*")
	}
	for _, p := range patterns {
		if err := unlinkMatching(ctx, s.rdb, p); err != nil {
			fmt.Fprintf(s.log, "   cleanup: %v\n", err)
		}
	}
}

// startWorker runs the worker binary on n's queues and stream against u,
// with BUNDLE_SOCIAL_RATE=rate and the defaults for everything else.
func (s *suite) startWorker(n names, u *upstream, rate string) (*workerProc, error) {
	env := map[string]string{
		"REDIS_URL":              s.cfg.RedisURL,
		"BUNDLE_SOCIAL_API_KEY":  s.apiKey,
		"BUNDLE_SOCIAL_BASE_URL": u.URL,
		"BUNDLE_SOCIAL_RATE":     rate,
		"WORKER_CONCURRENCY":     strconv.Itoa(s.cfg.Concurrency),
		"QUEUES":                 n.queues(),
		"RESULTS_STREAM":         n.stream,
	}
	if s.cfg.Provider == tasks.ProviderHooked {
		env["HOOKED_API_KEY"], env["HOOKED_BASE_URL"], env["HOOKED_RATE"] = s.apiKey, u.URL, rate
	}
	if s.cfg.ProfileDir != "" {
		env["PPROF"] = "1"
	}
	for k, v := range s.cfg.WorkerEnv {
		env[k] = v
	}
	logPath := filepath.Join(s.tmp, strings.ReplaceAll(n.idPrefix, "/", "_")+".log")
	if s.cfg.WorkerLog == "null" {
		logPath = os.DevNull
	}
	return startWorker(s.workerBin, env, logPath)
}

// start runs variant v's worker on n's queues.
func (s *suite) start(v variant, n names) (runner, error) {
	u, err := s.upstream(upstreamOptions{latency: v.latency})
	if err != nil {
		return nil, err
	}
	switch v.kind {
	case kindFull:
		return s.startWorker(n, u, "off")
	case kindFullBudget:
		return s.startWorker(n, u, s.cfg.Budget)
	case kindBullMQ:
		return s.bullmq.start(n.def, n.stream, u.URL, s.cfg.Concurrency, s.stderr)
	}
	args := []string{"-kind", v.kind, "-queues", n.queues(), "-concurrency", strconv.Itoa(s.cfg.Concurrency),
		"-upstream", u.URL, "-stream", n.stream}
	return startChild(s.cfg.Exe, args, s.cfg.RedisURL, s.stderr)
}

// enqueue puts k tasks on n's default queue before v's worker starts.
func (s *suite) enqueue(ctx context.Context, v variant, n names, enq *enqueuer, k int) error {
	if v.kind == kindBullMQ {
		if s.cfg.Provider == tasks.ProviderHooked {
			return errors.New("the BullMQ script makes bundle.social's request only; drop -task hooked or the bullmq variants")
		}
		return s.bullmq.enqueue(ctx, n.def, k)
	}
	return enq.batch(ctx, n.def, k)
}

// snapshot is the state at one end of a measured window.
type snapshot struct {
	at       time.Time
	done     int64
	cmds     map[string]cmdStat
	redisCPU int64 // µs
	ownCPU   int64 // µs: the driver, which is also the upstream
	child    childStats
}

// counter tells how many tasks the worker has finished: the no-op handler
// counts them itself, the others leave one stream entry each.
func (s *suite) counter(c runner, n names) func(context.Context) (int64, error) {
	if cp, ok := c.(*childProc); ok && cp.kind == kindNoop {
		return func(context.Context) (int64, error) {
			st, err := cp.ask("stats")
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

func (s *suite) snap(ctx context.Context, c runner, count func(context.Context) (int64, error)) (snapshot, error) {
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
	sn.child, err = c.stats()
	return sn, err
}

// phaseTimeout is generous: a slow machine makes a slow benchmark, never a
// failed one, unless nothing moves for this long.
func (s *suite) phaseTimeout(tasks int) time.Duration {
	return 2*time.Minute + time.Duration(tasks)*20*time.Millisecond
}

// throughput measures one variant: drain rate of a batch enqueued before
// the worker starts (measured between 10% and 90% done, so start-up and
// the tail do not count, and from the first result entry to the last),
// then latency at half that rate, then commands per task under MONITOR.
func (s *suite) throughput(ctx context.Context, v variant) row {
	r := row{Name: v.name, Kind: v.kind, Latency: v.latency, Tasks: s.cfg.Tasks, TopPerTask: -1}
	n := s.names(v.name)
	defer s.cleanup(n)
	enq := &enqueuer{client: s.client, prefix: n.idPrefix, provider: s.cfg.Provider}
	if r.Err = s.enqueue(ctx, v, n, enq, s.cfg.Tasks); r.Err != nil {
		return r
	}
	c, err := s.start(v, n)
	if err != nil {
		r.Err = err
		return r
	}
	defer func() {
		if err := c.stop(ctx); err != nil && r.Err == nil {
			r.Err = err
		}
	}()
	count := s.counter(c, n)
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
		if err := c.startProfile(path, s.profileLength(ctx, n, lo)); err != nil {
			fmt.Fprintf(s.log, "   no profile: %v\n", err)
		} else {
			profiling = true
		}
	}
	if _, r.Err = waitFor(ctx, count, hi, timeout); r.Err != nil {
		return r
	}
	b, err := s.snap(ctx, c, count)
	if profiling {
		if err := c.finishProfile(); err != nil {
			fmt.Fprintf(s.log, "   profile: %v\n", err)
		}
	}
	if err != nil {
		r.Err = err
		return r
	}
	done := float64(b.done - a.done)
	r.TPS = done / b.at.Sub(a.at).Seconds()
	r.CmdsPerTask = float64(commandDelta(a.cmds, b.cmds)) / done
	r.CmdCosts = commandCosts(a.cmds, b.cmds, done)
	r.AllocsPerTask = -1
	if b.child.Mallocs > 0 {
		r.AllocsPerTask = float64(b.child.Mallocs-a.child.Mallocs) / done
	}
	r.RSSMB = float64(b.child.RSSKB) / 1024
	r.WorkerCPU = float64(b.child.CPU-a.child.CPU) / done
	r.RedisCPU = float64(b.redisCPU-a.redisCPU) / done
	r.DriverCPU = float64(b.ownCPU-a.ownCPU) / done
	if _, r.Err = waitFor(ctx, count, int64(s.cfg.Tasks), timeout); r.Err != nil {
		return r
	}
	if v.kind != kindNoop {
		if r.SpanTPS, r.Err = spanRate(ctx, s.rdb, n.stream); r.Err != nil {
			return r
		}
	}
	fmt.Fprintf(s.log, "   %.0f tasks/s (first to last entry: %.0f), %.1f Redis commands/task, %.0f allocs/task, RSS %.1f MB; CPU µs/task: worker %.0f, Redis %.0f, driver+upstream %.0f\n",
		r.TPS, r.SpanTPS, r.CmdsPerTask, r.AllocsPerTask, r.RSSMB, r.WorkerCPU, r.RedisCPU, r.DriverCPU)

	if v.kind == kindBullMQ {
		return r // the phases below enqueue with asynq
	}
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

// profileLength is how long a profile started at the lo mark can run and
// still end before the 90% mark, at the rate seen so far.
func (s *suite) profileLength(ctx context.Context, n names, lo int64) time.Duration {
	msgs, err := s.rdb.XRangeN(ctx, n.stream, "-", "+", 1).Result()
	if err != nil || len(msgs) == 0 {
		return time.Second
	}
	first, _ := entryTime(msgs[0].ID)
	rate := float64(lo) / time.Since(first).Seconds()
	return time.Duration(0.7 * float64(s.cfg.Tasks) * 0.8 / rate * float64(time.Second))
}

// spanRate is the fleet-quota review's way of measuring: entries over the time from
// the first result entry to the last, by their stream ids.
func spanRate(ctx context.Context, rdb *redis.Client, stream string) (float64, error) {
	first, err := rdb.XRangeN(ctx, stream, "-", "+", 1).Result()
	if err != nil {
		return 0, err
	}
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return 0, err
	}
	n, err := rdb.XLen(ctx, stream).Result()
	if err != nil || len(first) == 0 || len(last) == 0 {
		return 0, err
	}
	a, _ := entryTime(first[0].ID)
	b, _ := entryTime(last[0].ID)
	if !b.After(a) {
		return 0, nil
	}
	return float64(n-1) / b.Sub(a).Seconds(), nil
}

// entryTime is when Redis added a stream entry, from its id "MS-SEQ".
func entryTime(id string) (time.Time, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n), err == nil
}

// latency enqueues at half the measured throughput, so every variant is
// equally loaded, and reads each task's enqueue-to-result time.
func (s *suite) latency(ctx context.Context, r *row, c runner, enq *enqueuer, count func(context.Context) (int64, error), v variant, n names) error {
	before, err := count(ctx)
	if err != nil {
		return err
	}
	lastID := "0"
	noop, _ := c.(*childProc)
	if v.kind == kindNoop {
		if _, err := noop.ask("lat-start"); err != nil {
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
		st, err := noop.ask("lat")
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
