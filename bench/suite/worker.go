package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runner is a worker the driver started: refreshq's worker binary, a bench
// child (naive or no-op asynq handler) or the BullMQ script.
type runner interface {
	// stats are the process's CPU time, RSS and, where it can tell, its
	// heap allocations (Mallocs 0: unknown).
	stats() (childStats, error)
	// startProfile starts a CPU profile of about d into path;
	// finishProfile waits until it is written.
	startProfile(path string, d time.Duration) error
	finishProfile() error
	stop(ctx context.Context) error
}

// buildWorker builds cmd/worker from the module at root into dir, once per
// run, as it would be deployed: no -race, no test hooks.
func buildWorker(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/worker in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// moduleRoot is the directory holding refreshq's go.mod, at or above dir.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/refreshq/refreshq\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no refreshq go.mod at or above %s: run the benchmark from the repository (it builds ./cmd/worker and runs ./bench/bullmq), or give -worker-bin and -bullmq-dir", dir)
		}
	}
}

// workerProc is refreshq's worker binary, run with its configuration in
// the environment and its logs in a file, the way it is deployed.
type workerProc struct {
	cmd     *exec.Cmd
	logPath string
	addr    string // HTTP_ADDR: /readyz, /metrics, /debug/pprof/
	exit    chan error
	prof    chan error
}

// startWorker runs bin with env (and nothing else of the driver's
// environment, so a setting in the caller's shell cannot change what is
// measured), sends stdout and stderr to logPath, and waits until the
// worker says it is ready.
func startWorker(bin string, env map[string]string, logPath string) (*workerProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env["HTTP_ADDR"] = addr
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	w := &workerProc{cmd: cmd, logPath: logPath, addr: addr, exit: make(chan error, 1)}
	go func() { w.exit <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w, nil
			}
		}
		select {
		case err := <-w.exit:
			return nil, fmt.Errorf("worker exited before it was ready (%v); its log:\n%s", err, tail(logPath, 2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.kill()
			return nil, fmt.Errorf("worker not ready after 60s; its log:\n%s", tail(logPath, 2000))
		}
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func (w *workerProc) stats() (childStats, error) {
	st := procStats(w.cmd.Process.Pid)
	resp, err := http.Get("http://" + w.addr + "/metrics")
	if err != nil {
		return st, fmt.Errorf("worker /metrics: %w", err)
	}
	defer resp.Body.Close()
	m := parseMetrics(resp.Body, "go_memstats_mallocs_total", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds_count")
	st.Mallocs = uint64(m["go_memstats_mallocs_total"])
	st.HeapKB = uint64(m["go_memstats_heap_inuse_bytes"]) >> 10
	st.NumGC = uint32(m["go_gc_duration_seconds_count"])
	return st, nil
}

// parseMetrics reads the named unlabelled samples of a Prometheus text
// exposition.
func parseMetrics(r io.Reader, names ...string) map[string]float64 {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && want[name] {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			out[name] = f
		}
	}
	return out
}

// startProfile asks the worker's /debug/pprof/profile (PPROF=1) for a
// profile of d, whole seconds: the handler cannot be stopped early.
func (w *workerProc) startProfile(path string, d time.Duration) error {
	secs := max(1, int(d/time.Second))
	w.prof = make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", w.addr, secs))
		if err != nil {
			w.prof <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			w.prof <- fmt.Errorf("worker /debug/pprof/profile: %s", resp.Status)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			w.prof <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		w.prof <- errors.Join(err, f.Close())
	}()
	return nil
}

func (w *workerProc) finishProfile() error {
	if w.prof == nil {
		return nil
	}
	err := <-w.prof
	w.prof = nil
	return err
}

// stop sends SIGTERM and waits for the worker's drain, killing it if it
// takes longer than its own default grace allows.
func (w *workerProc) stop(ctx context.Context) error {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.exit:
		if err != nil {
			return fmt.Errorf("worker: %w; its log:\n%s", err, tail(w.logPath, 2000))
		}
		return nil
	case <-time.After(40 * time.Second):
		w.kill()
		return errors.New("worker did not stop within 40s of SIGTERM; killed")
	case <-ctx.Done():
		w.kill()
		return ctx.Err()
	}
}

func (w *workerProc) kill() { _ = w.cmd.Process.Kill() }

// clockTick is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTick = 100

// procStats reads another process's CPU time and RSS from /proc.
func procStats(pid int) childStats {
	var st childStats
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		st.CPU = parseStatCPU(string(b))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		st.RSSKB = parseRSS(string(b))
	}
	return st
}

// parseStatCPU is utime + stime of a /proc/PID/stat line, in µs. The
// command name, in parentheses, may hold spaces, so fields are counted
// from its closing parenthesis.
func parseStatCPU(stat string) int64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state is field 3 of the line, utime 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return (u + s) * 1_000_000 / clockTick
}
