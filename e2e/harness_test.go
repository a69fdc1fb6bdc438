package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/refreshq/refreshq/internal/redistest"
	"github.com/refreshq/refreshq/internal/simulator"
	"github.com/refreshq/refreshq/internal/syncbuf"
	"github.com/refreshq/refreshq/internal/testenv"
	"github.com/refreshq/refreshq/results"
)

// bins are the binaries TestMain builds once.
var bins struct{ worker, enqueue string }

func TestMain(m *testing.M) {
	testenv.RequireRedisURLMain()
	dir, err := os.MkdirTemp("", "refreshq-e2e-")
	if err != nil {
		panic(err)
	}
	bins.worker = filepath.Join(dir, "worker")
	bins.enqueue = filepath.Join(dir, "enqueue")
	for bin, pkg := range map[string]string{bins.worker: "../cmd/worker", bins.enqueue: "../cmd/enqueue"} {
		out, err := exec.Command("go", "build", "-race", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// Stack is one test's world: a Redis database, the simulator, and the
// environment every process of the test gets.
type Stack struct {
	t        testing.TB
	RedisURL string
	RDB      *redis.Client
	Sim      *simulator.Simulator
	SimURL   string // base URL, with a path prefix as a gateway would have
	Queue    string
	Stream   string
	base     map[string]string
}

// NewStack takes a database, flushes it, and starts the simulator with
// opts (its Prefix is set here).
func NewStack(t testing.TB, opts simulator.Options) *Stack {
	t.Helper()
	s := &Stack{t: t, Queue: "default", Stream: "refresh:results"}
	s.RedisURL, s.RDB = redistest.DB(t)
	s.startSimulator(opts)
	return s
}

// startSimulator serves the simulator (with opts) under a path prefix, as
// a gateway would, and sets the environment every process of the stack
// gets: its Redis, the simulator as both upstreams, keys unique to the
// test, JSON logs.
func (s *Stack) startSimulator(opts simulator.Options) {
	opts.Prefix = "/gw"
	s.Sim = simulator.New(opts)
	srv := httptest.NewServer(s.Sim)
	s.t.Cleanup(func() { s.Sim.Close(); srv.Close() })
	s.SimURL = srv.URL + "/gw"
	s.base = map[string]string{
		"REDIS_URL":              s.RedisURL,
		"BUNDLE_SOCIAL_API_KEY":  "bundle-secret-key-" + s.t.Name(),
		"HOOKED_API_KEY":         "hooked-secret-key-" + s.t.Name(),
		"BUNDLE_SOCIAL_BASE_URL": s.SimURL,
		"HOOKED_BASE_URL":        s.SimURL,
		"LOG_FORMAT":             "json",
		"LOG_LEVEL":              "info",
	}
}

// Env returns the stack's environment with overrides ("" deletes).
func (s *Stack) Env(over map[string]string) []string {
	m := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	for k, v := range s.base {
		m[k] = v
	}
	for k, v := range over {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// Worker is a running worker process.
type Worker struct {
	t      testing.TB
	cmd    *exec.Cmd
	HTTP   string // host:port of its HTTP server
	Stderr *syncbuf.Buffer
	done   chan struct{}
	err    error
}

// StartWorker runs cmd/worker with the stack's environment plus over, and
// waits until /readyz answers 200.
func (s *Stack) StartWorker(over map[string]string, args ...string) *Worker {
	s.t.Helper()
	return s.startWorkerBin(bins.worker, over, args...)
}

// startWorkerBin is StartWorker with another worker binary (the
// fault-injection build).
func (s *Stack) startWorkerBin(bin string, over map[string]string, args ...string) *Worker {
	s.t.Helper()
	// Port 0, and the address read back from the worker's log: a port
	// found free and handed over can be taken by another test process in
	// between, and its /readyz would answer for ours.
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
	for k, v := range over {
		env[k] = v
	}
	w := &Worker{t: s.t, Stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Env = s.Env(env)
	w.cmd.Stdout = w.Stderr
	w.cmd.Stderr = w.Stderr
	if err := w.cmd.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	s.t.Cleanup(func() {
		w.Kill()
		if s.t.Failed() {
			s.t.Logf("worker %s log:\n%s", w.HTTP, tail(w.Stderr.String(), 60))
		}
	})
	// Generous: a -race build on two busy cores can take a while to start.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if w.HTTP == "" {
			w.HTTP = listenAddr(w.Stderr.String())
		}
		if w.HTTP != "" {
			if code, _ := w.Get("/readyz"); code == 200 {
				return w
			}
		}
		select {
		case <-w.done:
			s.t.Fatalf("worker exited before it was ready: %v\n%s", w.err, w.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("worker not ready within 60s:\n%s", w.Stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpAddrLog finds the address a worker logs when it starts serving.
var httpAddrLog = regexp.MustCompile(`"msg":"(?:worker started|monitor only[^"]*)".*?"http_addr":"([^"]+)"`)

// listenAddr is the HTTP address in a worker's log, "" until it is there.
func listenAddr(log string) string {
	if m := httpAddrLog.FindStringSubmatch(log); m != nil {
		return m[1]
	}
	return ""
}

// Get fetches a path of the worker's HTTP server.
func (w *Worker) Get(path string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + w.HTTP + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// Kill sends SIGKILL and waits: a crash, nothing cleaned up.
func (w *Worker) Kill() {
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-w.done
}

// Stop sends SIGTERM and returns the exit code once the process exits.
func (w *Worker) Stop(timeout time.Duration) int {
	w.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(timeout):
		w.t.Errorf("worker did not exit within %s of SIGTERM", timeout)
		w.Kill()
	}
	return w.cmd.ProcessState.ExitCode()
}

// Done is closed when the process has exited.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Enqueue runs cmd/enqueue and returns its stdout, stderr and exit code.
func (s *Stack) Enqueue(over map[string]string, stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.Command(bins.enqueue, args...)
	cmd.Env = s.Env(over)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("run enqueue: %v", err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// MustEnqueue enqueues and returns the task id printed.
func (s *Stack) MustEnqueue(args ...string) string {
	s.t.Helper()
	out, errs, code := s.Enqueue(nil, "", args...)
	if code != 0 {
		s.t.Fatalf("enqueue %v: exit %d\n%s", args, code, errs)
	}
	return strings.TrimSpace(out)
}

// Results returns every entry in the results stream, oldest first.
func (s *Stack) Results() []results.Entry {
	s.t.Helper()
	msgs, err := s.RDB.XRange(context.Background(), s.Stream, "-", "+").Result()
	if err != nil {
		s.t.Fatalf("read results: %v", err)
	}
	out := make([]results.Entry, 0, len(msgs))
	for _, m := range msgs {
		e := results.FromValues(m.ID, m.Values)
		out = append(out, e)
	}
	return out
}

// WaitResults waits until the stream holds at least n entries and returns
// them all.
func (s *Stack) WaitResults(n int, timeout time.Duration) []results.Entry {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Results()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d results after %s, want %d: %+v", len(got), timeout, n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ResultFor returns the entries of one task.
func ResultFor(all []results.Entry, taskID string) []results.Entry {
	var out []results.Entry
	for _, e := range all {
		if e.TaskID == taskID {
			out = append(out, e)
		}
	}
	return out
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
