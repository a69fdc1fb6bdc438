package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// bullmqScript is bench/bullmq/bench.js: BullMQ doing the same job as the
// naive handler (the same request, one XADD of the same entry).
type bullmqScript struct {
	dir      string // bench/bullmq, with node_modules installed
	redisURL string
}

// check says what to run when node or the script's packages are missing.
func (b bullmqScript) check() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("bullmq: node is not installed; install Node.js ≥ 18, then run `npm ci` in bench/bullmq")
	}
	if _, err := os.Stat(filepath.Join(b.dir, "node_modules", "bullmq")); err != nil {
		return fmt.Errorf("bullmq: %s has no node_modules/bullmq; run `npm ci` there first", b.dir)
	}
	return nil
}

func (b bullmqScript) command(env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command("node", append([]string{"bench.js"}, args...)...)
	cmd.Dir = b.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "REDIS_URL=" + b.redisURL}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// enqueue adds n jobs to queue with BullMQ's own Queue.addBulk.
func (b bullmqScript) enqueue(ctx context.Context, queue string, n int) error {
	if err := b.check(); err != nil {
		return err
	}
	cmd := b.command(map[string]string{"BULLMQ_QUEUE": queue, "TASKS": strconv.Itoa(n)}, "enqueue")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bullmq enqueue: %w\n%s", err, out)
	}
	return nil
}

// bullmqProc is the script's worker.
type bullmqProc struct {
	cmd  *exec.Cmd
	exit chan error
}

// start runs the script's worker and waits until it says ready.
func (b bullmqScript) start(queue, stream, upstreamURL string, concurrency int, stderr io.Writer) (*bullmqProc, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	cmd := b.command(map[string]string{"BULLMQ_QUEUE": queue, "STREAM": stream, "UPSTREAM": upstreamURL,
		"CONCURRENCY": strconv.Itoa(concurrency)}, "work")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start node bench.js: %w", err)
	}
	p := &bullmqProc{cmd: cmd, exit: make(chan error, 1)}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
			}
		}
		p.exit <- cmd.Wait()
	}()
	select {
	case <-ready:
		return p, nil
	case err := <-p.exit:
		return nil, fmt.Errorf("node bench.js work exited before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("node bench.js work not ready after 60s")
	}
}

func (p *bullmqProc) stats() (childStats, error) { return procStats(p.cmd.Process.Pid), nil }

func (p *bullmqProc) startProfile(string, time.Duration) error {
	return errors.New("no Go profile of the BullMQ worker; use node --cpu-prof")
}

func (p *bullmqProc) finishProfile() error { return nil }

func (p *bullmqProc) stop(ctx context.Context) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exit:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("node bench.js work did not stop within 30s of SIGTERM; killed")
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		return ctx.Err()
	}
}

// cleanupBullMQ removes a queue's keys (BullMQ's default prefix "bull").
func cleanupBullMQ(ctx context.Context, rdb *redis.Client, queue string) error {
	return unlinkMatching(ctx, rdb, "bull:"+queue+":*")
}
