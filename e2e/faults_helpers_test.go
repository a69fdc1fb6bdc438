package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// Helpers for the fault tests (crash_test.go and its neighbours): a stack
// on a Redis of the test's own, a steady producer, and the one check every
// fault test ends with: each task has exactly one result.

// stackOnRedis is NewStack on a Redis the test started itself (to kill,
// restart or fail it over); rdb reads the results.
func stackOnRedis(t *testing.T, redisURL string, rdb *redis.Client, opts simulator.Options) *Stack {
	t.Helper()
	s := &Stack{t: t, RedisURL: redisURL, RDB: rdb, Queue: "default", Stream: "refresh:results"}
	t.Cleanup(func() { rdb.Close() })
	s.startSimulator(opts)
	return s
}

// Pid is the worker's process id; its results say host:Pid.
func (w *Worker) Pid() int { return w.cmd.Process.Pid }

// Alive says whether the process is still running.
func (w *Worker) Alive() bool {
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// finishedBy says whether entry e was written by worker w.
func finishedBy(e results.Entry, w *Worker) bool {
	return strings.HasSuffix(e.Worker, ":"+strconv.Itoa(w.Pid()))
}

// faultWorkerBin builds cmd/worker with -tags faultinject once, next to
// the other binaries (TestMain removes them).
var faultWorkerBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(bins.worker), "worker-faultinject")
	out, err := exec.Command("go", "build", "-race", "-tags", "faultinject", "-o", bin, "../cmd/worker").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the fault-injection worker: %v\n%s", err, out)
	}
	return bin, nil
})

// asynqClient is a producer on the stack's Redis, as another service
// would have.
func (s *Stack) asynqClient() (*asynq.Client, *asynq.Inspector) {
	s.t.Helper()
	opt, err := asynq.ParseRedisURI(s.RedisURL)
	if err != nil {
		s.t.Fatal(err)
	}
	c, insp := asynq.NewClient(opt), asynq.NewInspector(opt)
	s.t.Cleanup(func() { c.Close(); insp.Close() })
	return c, insp
}

// enqueueHooked enqueues one hooked refresh with refreshq's own task
// constructor (its default options: queue, MaxRetry 1000).
func enqueueHooked(ctx context.Context, c *asynq.Client, account string) (string, error) {
	task, err := tasks.NewTask(tasks.Hooked(account))
	if err != nil {
		return "", err
	}
	info, err := c.EnqueueContext(ctx, task)
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

// producer enqueues a task every interval until stopped, as a live system
// does during a deploy or an outage. acked are the tasks Redis
// acknowledged; doubt are those whose enqueue failed, which may or may not
// have been written before the error.
type producer struct {
	mu    sync.Mutex
	acked []string
	doubt []string
	stop  chan struct{}
	done  chan struct{}
}

func (s *Stack) startProducer(prefix string, every time.Duration) *producer {
	s.t.Helper()
	c, _ := s.asynqClient()
	p := &producer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			account := fmt.Sprintf("%s-%d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			// A fixed id makes a failed enqueue's task findable later.
			task, _ := tasks.NewTask(tasks.Hooked(account))
			id := account
			_, err := c.EnqueueContext(ctx, task, asynq.TaskID(id))
			cancel()
			p.mu.Lock()
			if err != nil {
				p.doubt = append(p.doubt, id)
			} else {
				p.acked = append(p.acked, id)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// Stop stops the producer and returns what it enqueued.
func (p *producer) Stop() (acked, doubt []string) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.doubt
}

// Count is how many enqueues were acknowledged so far.
func (p *producer) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// waitEachResult waits until every task in ids has a result, then a little
// longer so that a second entry for any of them would show too.
func (s *Stack) waitEachResult(ids []string, timeout time.Duration) []results.Entry {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		all := s.Results()
		have := map[string]bool{}
		for _, e := range all {
			have[e.TaskID] = true
		}
		var missing []string
		for _, id := range ids {
			if !have[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			time.Sleep(2 * time.Second)
			return s.Results()
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d of %d tasks have no result after %s, e.g. %v", len(missing), len(ids), timeout, missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkExactlyOnce fails the test unless every task in must has exactly
// one entry, every task in may has at most one, and the stream has nothing
// else.
func checkExactlyOnce(t *testing.T, all []results.Entry, must, may []string) {
	t.Helper()
	count := map[string]int{}
	for _, e := range all {
		count[e.TaskID]++
	}
	known := map[string]bool{}
	for _, id := range must {
		known[id] = true
		if n := count[id]; n != 1 {
			t.Errorf("task %s has %d results, want exactly 1", id, n)
		}
	}
	for _, id := range may {
		known[id] = true
		if n := count[id]; n > 1 {
			t.Errorf("task %s (enqueue in doubt) has %d results, want at most 1", id, n)
		}
	}
	for id, n := range count {
		if !known[id] {
			t.Errorf("unexpected task %s has %d results", id, n)
		}
	}
}

// ageLeases makes asynq see the queue's active tasks as abandoned long
// ago, so the recoverer of the next worker to start re-runs them at once
// instead of after the ~1-2 minutes TestKillNineMidTask measures. It
// writes asynq's lease set directly.
func ageLeases(t *testing.T, rdb *redis.Client, queue string) int {
	t.Helper()
	ctx := context.Background()
	key := "asynq:{" + queue + "}:lease"
	ids, err := rdb.ZRange(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatalf("read leases: %v", err)
	}
	past := float64(time.Now().Add(-5 * time.Minute).Unix())
	for _, id := range ids {
		rdb.ZAdd(ctx, key, redis.Z{Score: past, Member: id})
	}
	return len(ids)
}

// rssMB reads a process's resident set from /proc.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// killedBySignal says whether the process ended by SIGKILL.
func killedBySignal(w *Worker) bool {
	ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// sigterm is what a deploy sends.
var sigterm = syscall.SIGTERM
