package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/testenv"
)

// URL returns a Redis URL for the test: REDIS_URL when set, else a fresh
// miniredis closed at the end of the test (under CI=true an unset
// REDIS_URL fails the test instead). mini is that miniredis, for a test
// that moves its clock (FastForward); it is nil against a real Redis.
func URL(t testing.TB) (url string, mini *miniredis.Miniredis) {
	t.Helper()
	if u := testenv.RedisURL(t); u != "" {
		return u, nil
	}
	m := Mini(t)
	return "redis://" + m.Addr(), m
}

// Client returns a client of URL(t), closed at the end of the test.
func Client(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	url, _ := URL(t)
	return Connect(t, url), url
}

// Connect returns a client of url that answered a PING, closed at the end
// of the test.
func Connect(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redis URL %q: %v", url, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s does not answer: %v", opt.Addr, err)
	}
	return c
}

// ConnOpt is URL(t) as asynq's connection option.
func ConnOpt(t testing.TB) asynq.RedisConnOpt {
	t.Helper()
	url, _ := URL(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatalf("redis URL %q: %v", url, err)
	}
	return opt
}

// Mini starts a miniredis of the test's own, closed at the end of the
// test, whatever REDIS_URL says: for a test that moves its clock, stops
// it to play an outage, or changes what every client of it sees (SCRIPT
// FLUSH).
func Mini(t testing.TB) *miniredis.Miniredis {
	t.Helper()
	return miniredis.RunT(t)
}

// MiniClient is Mini with a client of it, closed at the end of the test.
func MiniClient(t testing.TB) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	m := Mini(t)
	return Connect(t, "redis://"+m.Addr()), m
}

// Name returns a name unique to this test run, for queues, streams and
// key prefixes: asynq has no key prefix, so tests sharing one Redis are
// kept apart by the names they use. It holds no glob character, so
// name+"*" matches its keys only.
func Name(t testing.TB, prefix string) string {
	clean := strings.NewReplacer("/", "_", " ", "_", ":", "_", "*", "_", "?", "_", "[", "_", "]", "_", "\\", "_").Replace(t.Name())
	if len(clean) > 24 {
		clean = clean[:24]
	}
	return fmt.Sprintf("%s%s_%s", prefix, clean, randHex(4))
}

// Keys returns Name(t, prefix) and, at the end of the test, deletes from
// rdb every key that starts with it.
func Keys(t testing.TB, rdb redis.UniversalClient, prefix string) string {
	t.Helper()
	name := Name(t, prefix)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, name+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete the keys %s*: %v", name, err)
		}
	})
	return name
}

// Server is a redis-server process of a test's own.
type Server struct {
	Port int
	Dir  string
	args []string

	mu  sync.Mutex // a test may Kill from a goroutine while its cleanup kills too
	cmd *exec.Cmd
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
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, _ = os.Create(filepath.Join(s.Dir, "redis.log"))
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// LOADING answers an error until the AOF is read back. A server
		// whose default user is off answers NOAUTH: it is up.
		if err := c.Ping(context.Background()).Err(); err == nil || redis.HasErrorPrefix(err, "NOAUTH") {
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
	s.mu.Lock()
	defer s.mu.Unlock()
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

// SentinelMaster is the name StartSentinel's Sentinel knows its master by.
const SentinelMaster = "mymaster"

// StartSentinel starts a Sentinel (redis-server --sentinel) on a free port
// watching master as SentinelMaster with a quorum of 1, and waits until
// it listens; it is killed at the end of the test. conf adds lines to its
// configuration after the monitor line, e.g. "sentinel
// down-after-milliseconds mymaster 1000" or "requirepass pw". It returns
// the Sentinel's host:port.
func StartSentinel(t testing.TB, master *Server, conf ...string) string {
	t.Helper()
	testenv.Program(t, "redis-server", "apt-get install -y redis-server (.ci/run installs it)")
	port := FreePort(t)
	dir := t.TempDir()
	lines := append([]string{
		"port " + strconv.Itoa(port), "bind 127.0.0.1", "dir " + dir,
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", SentinelMaster, master.Port),
	}, conf...)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", path, "--sentinel")
	cmd.Stdout, _ = os.Create(filepath.Join(dir, "sentinel.log"))
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s did not listen within 10s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
