package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/poll"
	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/syncbuf"
)

// persistentRedis starts a redis-server of the test's own that loses no
// acknowledged write when killed: every write is fsynced to the AOF.
func persistentRedis(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	return srv, redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
}

// TestRedisOutage kills Redis under load for ~10 s and starts it again:
// the workers stay up, /readyz says 503 meanwhile and 200 after, work
// resumes without a restart, and every acknowledged task ends with exactly
// one result. The enqueue CLI, run while Redis is down, exits 1 and says
// so.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	srv, rdb := persistentRedis(t)
	s := stackOnRedis(t, srv.URL(), rdb, simulator.Options{Latency: 100 * time.Millisecond})
	env := map[string]string{"WORKER_CONCURRENCY": "4"}
	workers := []*Worker{s.StartWorker(env), s.StartWorker(env)}
	p := s.startProducer("outage", 50*time.Millisecond)
	poll.Until(t, 30*time.Second, "load before the outage", func() bool { return len(s.Results()) >= 20 })

	srv.Kill()
	downAt := time.Now()
	for i, w := range workers {
		poll.Until(t, 15*time.Second, fmt.Sprintf("worker %d's /readyz to answer 503", i), func() bool {
			code, _ := w.Get("/readyz")
			return code == 503
		})
	}
	_, stderr, code := s.Enqueue(nil, "", "hooked", "--account", "while-down")
	if code != 1 || !strings.Contains(strings.ToLower(stderr), "redis") || len(strings.TrimSpace(stderr)) == 0 {
		t.Errorf("enqueue with Redis down: exit %d, stderr %q; want exit 1 and a message about Redis", code, stderr)
	} else {
		t.Logf("enqueue with Redis down says: %s", strings.TrimSpace(stderr))
	}
	time.Sleep(time.Until(downAt.Add(10 * time.Second)))
	for i, w := range workers {
		if !w.Alive() {
			t.Fatalf("worker %d exited while Redis was down:\n%s", i, tail(w.Stderr.String(), 30))
		}
	}

	srv.Start(t)
	upAt := time.Now()
	for i, w := range workers {
		poll.Until(t, 60*time.Second, fmt.Sprintf("worker %d's /readyz to answer 200 again", i), func() bool {
			code, _ := w.Get("/readyz")
			return code == 200
		})
	}
	t.Logf("ready again %s after Redis came back", time.Since(upAt).Round(time.Millisecond))
	// Work resumes: tasks enqueued after the outage run too.
	after := p.Count()
	poll.Until(t, 30*time.Second, "enqueues after the outage", func() bool { return p.Count() > after+20 })
	acked, doubt := p.Stop()
	t.Logf("%d tasks acknowledged, %d enqueues failed during the outage", len(acked), len(doubt))
	// A task whose dequeue Redis applied just before it died never reached
	// a worker: it waits for asynq's recoverer like a dead worker's task
	// (lease 30 s + 30 s + up to a minute), hence the long wait.
	all := s.waitEachResult(acked, 3*time.Minute)
	t.Logf("every acknowledged task has its result %s after Redis came back", time.Since(upAt).Round(time.Second))
	checkExactlyOnce(t, all, acked, doubt)
	for i, w := range workers {
		if !w.Alive() {
			t.Errorf("worker %d exited", i)
		}
	}
}

// TestEnqueueFileRedisDiesMidway kills Redis while `enqueue file` is
// sending a large file, restarts it, and checks the CLI's account against
// what Redis actually holds: every line it says was enqueued is there,
// no line it says was not is there, and anything else is a line it
// reported in doubt, by task id.
func TestEnqueueFileRedisDiesMidway(t *testing.T) {
	t.Parallel()
	srv, rdb := persistentRedis(t)
	s := stackOnRedis(t, srv.URL(), rdb, simulator.Options{})
	const lines = 200000
	var file strings.Builder
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&file, `{"provider":"hooked","account_id":"a%d","meta":{"line":%d}}`+"\n", i, i)
	}
	cmd := exec.Command(bins.enqueue, "file", "-")
	cmd.Env = s.Env(nil)
	cmd.Stdin = strings.NewReader(file.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill Redis once the first task ids are out: midway.
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("no task id printed: %v\n%s", err, stderr.String())
	}
	srv.Kill()
	rest, _ := io.ReadAll(out)
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	report := stderr.String()
	t.Logf("enqueue file, Redis killed midway: exit %d\n%s", code, tail(report, 12))
	if code != 1 {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	printed := strings.Fields(first + string(rest))

	enqueued := parseLineRanges(t, report, "enqueued:")
	notEnqueued := parseLineRanges(t, report, "not enqueued:")
	doubt := map[int]bool{}
	for _, m := range regexp.MustCompile(`line (\d+): task (\S+)`).FindAllStringSubmatch(report, -1) {
		n, _ := strconv.Atoi(m[1])
		doubt[n] = true
	}
	if len(enqueued) == 0 || len(notEnqueued) == 0 {
		t.Fatalf("the report names %d lines enqueued and %d not; want both (Redis died midway)", len(enqueued), len(notEnqueued))
	}
	if len(enqueued)+len(notEnqueued)+len(doubt) != lines {
		t.Errorf("the report accounts for %d+%d+%d lines, want all %d", len(enqueued), len(notEnqueued), len(doubt), lines)
	}
	if len(printed) != len(enqueued) {
		t.Errorf("%d task ids on stdout, %d lines reported enqueued", len(printed), len(enqueued))
	}

	// What Redis kept (every acknowledged write is in the AOF).
	srv.Start(t)
	_, insp := s.asynqClient()
	inRedis := map[int]string{} // line → task id
	for page := 1; ; page++ {
		infos, err := insp.ListPendingTasks("default", asynq.Page(page), asynq.PageSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			var p struct {
				Meta struct{ Line int } `json:"meta"`
			}
			if err := json.Unmarshal(info.Payload, &p); err != nil {
				t.Fatal(err)
			}
			inRedis[p.Meta.Line] = info.ID
		}
		if len(infos) < 1000 {
			break
		}
	}
	ids := map[string]bool{}
	for _, id := range printed {
		ids[id] = true
	}
	for n := range enqueued {
		id, ok := inRedis[n]
		if !ok {
			t.Errorf("line %d reported enqueued but not in Redis", n)
		} else if !ids[id] {
			t.Errorf("line %d's task %s is not among the ids printed", n, id)
		}
	}
	for n := range notEnqueued {
		if _, ok := inRedis[n]; ok {
			t.Errorf("line %d reported not enqueued but is in Redis", n)
		}
	}
	for n := range inRedis {
		if !enqueued[n] && !doubt[n] {
			t.Errorf("line %d is in Redis but reported neither enqueued nor in doubt", n)
		}
	}
	t.Logf("%d enqueued, %d not, %d in doubt (%d of those in Redis)", len(enqueued), len(notEnqueued), len(doubt), len(inRedis)-len(enqueued))
}

// parseLineRanges reads "label lines 1-5, 9" from the CLI's report.
func parseLineRanges(t *testing.T, report, label string) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, row := range strings.Split(report, "\n") {
		row = strings.TrimSpace(row)
		rest, ok := strings.CutPrefix(row, label)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if i := strings.Index(rest, " ("); i >= 0 {
			rest = rest[:i]
		}
		if rest == "none" {
			return out
		}
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, "lines "), "line ")
		for _, part := range strings.Split(rest, ", ") {
			lo, hi, found := strings.Cut(part, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if found {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read %q in %q", part, row)
			}
			for n := a; n <= b; n++ {
				out[n] = true
			}
		}
		return out
	}
	t.Fatalf("the report has no %q row:\n%s", label, report)
	return nil
}
