package suite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/config"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Worker kinds: a bench child runs noop or naive; full is refreshq's
// worker binary, budgeted or not; bullmq is bench/bullmq's script.
const (
	kindNoop       = "noop"
	kindNaive      = "naive"
	kindFull       = "full"
	kindFullBudget = "full-budget"
	kindBullMQ     = "bullmq"
)

// childStats is what a child reports about itself.
type childStats struct {
	Ready     bool    `json:"ready,omitempty"`
	Processed int64   `json:"processed"` // no-op handler only
	Mallocs   uint64  `json:"mallocs"`
	RSSKB     int64   `json:"rss_kb"`
	HeapKB    uint64  `json:"heap_kb"`
	NumGC     uint32  `json:"num_gc"`
	CPU       int64   `json:"cpu_us"`        // user + system time of the process
	Latencies []int64 `json:"lat,omitempty"` // ns, no-op handler only
	Err       string  `json:"err,omitempty"`
}

// RunChild is the child side: it runs one worker kind until stdin says
// "stop" or closes, answering "stats", "lat-start", "lat", "prof PATH" and
// "prof-stop" with one JSON line each on stdout.
func RunChild(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench -child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", kindNoop, "noop or naive")
	queues := fs.String("queues", "", "QUEUES, as the worker reads it")
	concurrency := fs.Int("concurrency", 50, "tasks in flight")
	upstreamURL := fs.String("upstream", "", "bundle.social base URL")
	stream := fs.String("stream", "", "results stream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	redisURL := getenv("REDIS_URL")
	q, err := config.ParseQueues(*queues)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out sync.Mutex
	reply := func(v childStats) {
		out.Lock()
		defer out.Unlock()
		b, _ := json.Marshal(v)
		fmt.Fprintf(stdout, "%s\n", b)
	}

	noop := &noopHandler{}
	done := make(chan error, 1)
	switch *kind {
	case kindNoop, kindNaive:
		redisOpt, err := asynq.ParseRedisURI(redisURL)
		if err != nil {
			return err
		}
		var h asynq.Handler = noop
		if *kind == kindNaive {
			opt, err := redis.ParseURL(redisURL)
			if err != nil {
				return err
			}
			rdb := redis.NewClient(opt)
			defer rdb.Close()
			h = &naiveHandler{hc: newHTTPClient(*concurrency), base: *upstreamURL, rdb: rdb, stream: *stream, worker: results.WorkerName()}
		}
		// asynq's defaults but for concurrency, queues and the two polling
		// intervals, which take refreshq's values (internal/worker): with
		// asynq's 1 s TaskCheckInterval an idle processor sleeps up to
		// 1.5 s, which would swamp the latency being compared.
		srv := asynq.NewServer(redisOpt, asynq.Config{
			Concurrency: *concurrency, Queues: q.Weights(), LogLevel: asynq.WarnLevel,
			TaskCheckInterval: 100 * time.Millisecond, DelayedTaskCheckInterval: 250 * time.Millisecond,
		})
		if err := srv.Start(h); err != nil {
			return err
		}
		reply(childStats{Ready: true})
		go func() { <-ctx.Done(); srv.Shutdown(); done <- nil }()
	default:
		return fmt.Errorf("-kind %q: use noop or naive", *kind)
	}

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var prof *os.File
	for {
		select {
		case err := <-done:
			return err
		case line, ok := <-lines:
			if !ok || line == "stop" {
				cancel()
				return <-done
			}
			cmd, arg, _ := strings.Cut(line, " ")
			switch cmd {
			case "stats":
				st := selfStats()
				st.Processed = noop.processed.Load()
				reply(st)
			case "lat-start":
				noop.startRecording()
				reply(childStats{})
			case "lat":
				reply(childStats{Latencies: noop.stopRecording()})
			case "prof":
				f, err := os.Create(arg)
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					reply(childStats{Err: err.Error()})
					continue
				}
				prof = f
				reply(childStats{})
			case "prof-stop":
				if prof != nil {
					pprof.StopCPUProfile()
					prof.Close()
					prof = nil
				}
				reply(childStats{})
			default:
				reply(childStats{Err: "unknown command " + cmd})
			}
		}
	}
}

// selfStats reads this process's allocation count and RSS.
func selfStats() childStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return childStats{Mallocs: ms.Mallocs, RSSKB: rssKB(), HeapKB: ms.HeapInuse >> 10, NumGC: ms.NumGC, CPU: cpuMicros()}
}

// cpuMicros is the CPU time this process has used, user and system.
func cpuMicros() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// rssKB is VmRSS from /proc/self/status, 0 where there is none.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return parseRSS(string(b))
}

func parseRSS(status string) int64 {
	for line := range strings.SplitSeq(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// newHTTPClient keeps a connection per in-flight task: the default
// transport keeps only two idle connections per host, so at 50 in flight
// most requests would open a new connection.
func newHTTPClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// noopHandler is the ceiling: it does nothing but count, and, while the
// driver measures latency, note how long each task took from enqueue.
type noopHandler struct {
	processed atomic.Int64
	recording atomic.Bool
	mu        sync.Mutex
	lat       []int64
}

func (h *noopHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	if h.recording.Load() {
		id, _ := asynq.GetTaskID(ctx)
		if at, ok := enqueuedAt(id); ok {
			d := time.Now().UnixNano() - at
			h.mu.Lock()
			h.lat = append(h.lat, d)
			h.mu.Unlock()
		}
	}
	h.processed.Add(1)
	return nil
}

func (h *noopHandler) startRecording() {
	h.mu.Lock()
	h.lat = nil
	h.mu.Unlock()
	h.recording.Store(true)
}

func (h *noopHandler) stopRecording() []int64 {
	h.recording.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lat
}

// naiveHandler is what a first asynq handler for this job looks like: decode
// the payload, POST, read the body, XADD the result entry. No ledger, no
// budget, no exactly-once, no classification, no response validation, no
// metrics, no logs. The entry has the contract's fields, as the full
// worker's does, so that the two variants write the same XADD.
type naiveHandler struct {
	hc     *http.Client
	base   string
	rdb    *redis.Client
	stream string
	worker string
}

func (h *naiveHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p struct {
		TeamID     string          `json:"team_id"`
		Platform   string          `json:"platform"`
		AccountID  string          `json:"account_id"`
		Meta       json.RawMessage `json:"meta"`
		EnqueuedAt time.Time       `json:"enqueued_at"`
	}
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	provider, subject := tasks.ProviderBundleSocial, p.TeamID+"/"+p.Platform
	var req *http.Request
	if t.Type() == tasks.TypeHookedAccountRefresh {
		provider, subject = tasks.ProviderHooked, p.AccountID
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+hookedRefreshPath(p.AccountID), nil)
		if err != nil {
			return err
		}
		req = r
	} else {
		reqBody, err := json.Marshal(map[string]string{"type": p.Platform, "teamId": p.TeamID})
		if err != nil {
			return err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+bundleRefreshPath, bytes.NewReader(reqBody))
		if err != nil {
			return err
		}
		r.Header.Set("Content-Type", "application/json")
		req = r
	}
	req.Header.Set("x-api-key", "bench-key")
	resp, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return errors.New(resp.Status)
	}
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	e := results.Entry{TaskID: id, TaskType: t.Type(), Queue: queue, Provider: provider,
		Subject: subject, Status: results.StatusSucceeded, Attempts: 1, HTTPStatus: resp.StatusCode,
		Result: string(body), Meta: string(p.Meta), EnqueuedAt: p.EnqueuedAt, FinishedAt: time.Now(), Worker: h.worker}
	return naiveXAdd(ctx, h.rdb, h.stream, e).Err()
}

// naiveXAdd is the naive handler's one write: the entry, XADDed as is,
// with none of the full worker's checks. The Redis CPU per call table
// measures this same call.
func naiveXAdd(ctx context.Context, c redis.Cmdable, stream string, e results.Entry) *redis.StringCmd {
	fields := e.Values()
	values := make([]any, len(fields))
	for i, f := range fields {
		values[i] = f
	}
	return c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values})
}

// taskID encodes when the task was enqueued in its id, so that every
// variant, the no-op one included, can tell enqueue-to-result latency
// without decoding a payload.
func taskID(prefix string, seq int, at time.Time) string {
	return prefix + "-" + strconv.Itoa(seq) + "-" + strconv.FormatInt(at.UnixNano(), 10)
}

func enqueuedAt(id string) (int64, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(id[i+1:], 10, 64)
	return n, err == nil
}
