package suite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/tasks"
)

// driverCommands are what the driver itself sends while a window is
// measured; they are not the worker's cost.
var driverCommands = map[string]bool{"info": true, "xlen": true, "client|info": true}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	Calls int64
	Usec  int64 // Redis CPU time spent in the command, µs
}

// commandStats reads INFO commandstats.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]cmdStat, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	return parseCommandStats(s), nil
}

// redisCPU is the CPU time Redis has used (INFO cpu), in µs.
func redisCPU(ctx context.Context, rdb *redis.Client) (int64, error) {
	s, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	var total float64
	for line := range strings.SplitSeq(s, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_sys" || name == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return int64(total * 1e6), nil
}

// parseCommandStats reads lines like
// "cmdstat_evalsha:calls=12,usec=30,usec_per_call=2.50,...".
func parseCommandStats(s string) map[string]cmdStat {
	out := map[string]cmdStat{}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		var st cmdStat
		for f := range strings.SplitSeq(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				st.Calls, _ = strconv.ParseInt(v, 10, 64)
			} else if v, ok := strings.CutPrefix(f, "usec="); ok {
				st.Usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out[name] = st
	}
	return out
}

// commandDelta is the worker's commands between two snapshots: every
// command Redis executed, those run inside scripts included, less the
// driver's own.
func commandDelta(before, after map[string]cmdStat) int64 {
	var n int64
	for name, st := range after {
		if driverCommands[name] {
			continue
		}
		n += st.Calls - before[name].Calls
	}
	return n
}

// commandCosts is, per command, the calls and Redis µs per task between
// two snapshots (a script's commands are counted both on their own and in
// its evalsha), less the driver's own commands.
func commandCosts(before, after map[string]cmdStat, tasks float64) map[string]cmdStat {
	out := map[string]cmdStat{}
	for name, st := range after {
		d := cmdStat{Calls: st.Calls - before[name].Calls, Usec: st.Usec - before[name].Usec}
		if driverCommands[name] || d.Calls <= 0 {
			continue
		}
		// Kept per 1000 tasks, so small costs survive integer division.
		out[name] = cmdStat{Calls: int64(float64(d.Calls) * 1000 / tasks), Usec: int64(float64(d.Usec) * 1000 / tasks)}
	}
	return out
}

// monitorCounts tallies MONITOR lines: commands clients sent (top) by
// name, and commands scripts ran (inLua).
type monitorCounts struct {
	mu    sync.Mutex
	top   map[string]int64
	inLua int64
	skip  string // the driver's own connection, host:port
}

// add reads one MONITOR line, e.g.
// `1700000000.123456 [0 127.0.0.1:50812] "evalsha" "..." ...` or, for a
// command run by a script, `... [0 lua] "hget" ...`.
func (m *monitorCounts) add(line string) {
	open := strings.IndexByte(line, '[')
	end := strings.IndexByte(line, ']')
	if open < 0 || end < open {
		return
	}
	src := line[open+1 : end]
	_, client, _ := strings.Cut(src, " ")
	rest := strings.TrimSpace(line[end+1:])
	name := rest
	if strings.HasPrefix(rest, `"`) {
		if i := strings.IndexByte(rest[1:], '"'); i >= 0 {
			name = rest[1 : i+1]
		}
	}
	name = strings.ToLower(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case client == "lua":
		m.inLua++
	case client == m.skip:
	default:
		m.top[name]++
	}
}

func (m *monitorCounts) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.top)
	m.inLua = 0
}

// startMonitor runs MONITOR on a connection of its own (go-redis's Monitor
// hands its connection back to the pool while still reading it) and feeds
// every line to m until the returned closer is closed.
func startMonitor(ctx context.Context, opt *redis.Options, m *monitorCounts) (io.Closer, error) {
	if opt.TLSConfig != nil {
		return nil, errors.New("counting commands with MONITOR needs a plain redis:// URL; use -roundtrip-tasks 0")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("MONITOR: %w", err)
	}
	if opt.Password != "" {
		user := opt.Username
		if user == "" {
			user = "default"
		}
		fmt.Fprintf(conn, "*3\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(user), user, len(opt.Password), opt.Password)
	}
	fmt.Fprintf(conn, "*1\r\n$7\r\nMONITOR\r\n")
	go func() {
		rd := bufio.NewReaderSize(conn, 1<<20)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "-") {
				fmt.Fprintf(os.Stderr, "MONITOR: %s", line)
			}
			m.add(strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n"))
		}
	}()
	return conn, nil
}

// enqueuer puts benchmark tasks on a queue through asynq's client, the
// same bundle_social task every producer of refreshq makes.
type enqueuer struct {
	client *asynq.Client
	prefix string
	// provider is the tasks' provider: tasks.ProviderBundleSocial (the
	// default) or tasks.ProviderHooked.
	provider string
	// tenant, when set, is the payload's tenant field: a producer's tag
	// that builds without tenants ignore, as they ignore any unknown field.
	tenant string
	seq    atomic.Int64
}

// one enqueues one refresh on queue and returns its id.
func (e *enqueuer) one(ctx context.Context, queue string) (string, error) {
	n := int(e.seq.Add(1))
	now := time.Now()
	id := taskID(e.prefix, n, now)
	r := tasks.BundleSocial("team-"+strconv.Itoa(n%1000), "TIKTOK")
	if e.provider == tasks.ProviderHooked {
		r = tasks.Hooked("acct-" + strconv.Itoa(n%1000))
	}
	r.EnqueuedAt = now
	t, err := tasks.NewTask(r, asynq.Queue(queue), asynq.TaskID(id))
	if err != nil {
		return "", err
	}
	var opts []asynq.Option
	if e.tenant != "" {
		payload, err := withField(t.Payload(), "tenant", e.tenant)
		if err != nil {
			return "", err
		}
		// The task's own options go with the task it was made from.
		t = asynq.NewTask(t.Type(), payload)
		opts = []asynq.Option{asynq.Queue(queue), asynq.TaskID(id), asynq.MaxRetry(tasks.DefaultMaxRetry), asynq.Timeout(tasks.DefaultTimeout)}
	}
	if _, err := e.client.EnqueueContext(ctx, t, opts...); err != nil {
		return "", fmt.Errorf("enqueue: %w", err)
	}
	return id, nil
}

// withField adds one string field to a JSON object.
func withField(obj []byte, name, value string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	m[name] = v
	return json.Marshal(m)
}

// batch enqueues n tasks on queue from a few goroutines, as fast as Redis
// takes them.
func (e *enqueuer) batch(ctx context.Context, queue string, n int) error {
	const producers = 8
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := e.one(ctx, queue); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// paced enqueues at rate tasks/s for d, spread over a few goroutines so a
// slow enqueue does not hold the next one back, and returns how many.
func (e *enqueuer) paced(ctx context.Context, queue string, rate float64, d time.Duration) (int, error) {
	const producers = 4
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < total; i += producers {
				if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
					time.Sleep(wait)
				}
				if _, err := e.one(ctx, queue); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return total, <-errs
}

// cleanup removes what a run left in Redis: its queues (asynq's keys), its
// stream, the stream's per-task index and the ledger records of its tasks.
// All names carry the run's unique prefix, so nothing else is touched.
func cleanup(ctx context.Context, rdb *redis.Client, insp *asynq.Inspector, queues []string, stream, idPrefix string) error {
	for _, q := range queues {
		_ = insp.DeleteQueue(q, true)
		if err := unlinkMatching(ctx, rdb, "asynq:{"+q+"}*"); err != nil {
			return err
		}
		rdb.SRem(ctx, "asynq:queues", q)
	}
	if err := rdb.Unlink(ctx, stream).Err(); err != nil {
		return err
	}
	if err := unlinkMatching(ctx, rdb, stream+":task:*"); err != nil {
		return err
	}
	return unlinkMatching(ctx, rdb, "refreshq:task:"+idPrefix+"-*")
}

func unlinkMatching(ctx context.Context, rdb *redis.Client, pattern string) error {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	batch := make([]string, 0, 1000)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}
