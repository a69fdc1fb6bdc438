package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/testenv"
)

// URL returns a Redis URL for the test: REDIS_URL when set, else a fresh
// miniredis closed at the end of the test (under CI=true an unset
// REDIS_URL fails the test instead). real says which.
func URL(t testing.TB) (url string, real bool) {
	t.Helper()
	if u := testenv.RedisURL(t); u != "" {
		return u, true
	}
	m := miniredis.RunT(t)
	return "redis://" + m.Addr(), false
}

// Client returns a client of URL(t), closed at the end of the test.
func Client(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	url, _ := URL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s does not answer: %v", opt.Addr, err)
	}
	return c, url
}

// Name returns a name unique to this test run, for queues, streams and
// key prefixes: asynq has no key prefix, so tests sharing one Redis are
// kept apart by the names they use.
func Name(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	clean := strings.NewReplacer("/", "_", " ", "_", ":", "_").Replace(t.Name())
	if len(clean) > 24 {
		clean = clean[:24]
	}
	return fmt.Sprintf("%s%s_%s", prefix, clean, hex.EncodeToString(b))
}

// Server is a redis-server process of a test's own.
type Server struct {
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// StartServer starts redis-server on a free port with extra args (e.g.
// "--appendonly", "yes"); it is killed at the end of the test. Without
// redis-server the test is skipped, or fails under CI=true.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	testenv.Program(t, "redis-server", "apt-get install -y redis-server (.ci/run installs it)")
	s := &Server{Port: FreePort(t), Dir: t.TempDir(), args: args}
	s.Start(t)
	t.Cleanup(func() { s.Kill() })
	return s
}

// Start starts (or restarts) the server on its port and waits until it
// answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir, "--save", ""}, s.args...)
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.Stdout, _ = os.Create(filepath.Join(s.Dir, "redis.log"))
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// LOADING answers an error until the AOF is read back. A server
		// whose default user is off answers NOAUTH: it is up.
		if err := c.Ping(context.Background()).Err(); err == nil || strings.HasPrefix(err.Error(), "NOAUTH") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d did not answer within 10s", s.Port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
