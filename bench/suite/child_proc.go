package suite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// childProc is the driver's handle on a worker child.
type childProc struct {
	kind  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan []byte
	exit  chan error
}

// startChild runs exe -child args and waits until its worker takes tasks.
func startChild(exe string, args []string, redisURL string, stderr io.Writer) (*childProc, error) {
	cmd := exec.Command(exe, append([]string{"-child"}, args...)...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker child: %w", err)
	}
	c := &childProc{kind: kindOf(args), cmd: cmd, in: in, lines: make(chan []byte), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 256<<20) // latency lists are long lines
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(c.lines)
		c.exit <- cmd.Wait()
	}()
	st, err := c.read(60 * time.Second)
	if err != nil {
		c.kill()
		return nil, err
	}
	if !st.Ready {
		c.kill()
		return nil, fmt.Errorf("worker child: expected ready, got %+v", st)
	}
	return c, nil
}

func (c *childProc) read(timeout time.Duration) (childStats, error) {
	var st childStats
	select {
	case line, ok := <-c.lines:
		if !ok {
			return st, fmt.Errorf("worker child exited: %v", <-c.exit)
		}
		if err := json.Unmarshal(line, &st); err != nil {
			return st, fmt.Errorf("worker child said %q: %w", line, err)
		}
		if st.Err != "" {
			return st, errors.New("worker child: " + st.Err)
		}
		return st, nil
	case <-time.After(timeout):
		return st, errors.New("worker child did not answer")
	}
}

// ask sends one command and returns the child's answer.
func (c *childProc) ask(cmd string) (childStats, error) {
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		return childStats{}, fmt.Errorf("worker child: %w", err)
	}
	return c.read(30 * time.Second)
}

// stop asks the child to drain and waits for it; it kills a child that
// takes longer than the worker's own grace allows.
func (c *childProc) stop(ctx context.Context) error {
	_, _ = fmt.Fprintln(c.in, "stop")
	_ = c.in.Close()
	for {
		select {
		case _, ok := <-c.lines:
			if ok {
				continue
			}
			return <-c.exit
		case <-time.After(30 * time.Second):
			c.kill()
			return errors.New("worker child did not stop within 30s; killed")
		case <-ctx.Done():
			c.kill()
			return ctx.Err()
		}
	}
}

func (c *childProc) kill() { _ = c.cmd.Process.Kill() }

// kindOf is the -kind argument of a child's args.
func kindOf(args []string) string {
	for i, a := range args {
		if a == "-kind" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return kindNoop
}

func (c *childProc) stats() (childStats, error) { return c.ask("stats") }

func (c *childProc) startProfile(path string, _ time.Duration) error {
	_, err := c.ask("prof " + path)
	return err
}

// finishProfile ends the profile at once: a child's runs until told.
func (c *childProc) finishProfile() error {
	_, err := c.ask("prof-stop")
	return err
}
