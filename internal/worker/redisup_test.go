package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The watch says each change once, reminds at most every remind while
// Redis stays away, and keeps the password out.
func TestRedisWatchLogsChangesOnce(t *testing.T) {
	// up[i] is whether the i-th ping answers; after the script, it answers.
	up := []bool{false, false, false, false, false, false, false, false, true, true, false, false, true}
	var i atomic.Int32
	start := time.Now()
	done := make(chan struct{})
	var buf bytes.Buffer
	var mu sync.Mutex
	w := &redisWatch{
		ping: func(context.Context) error {
			n := int(i.Add(1)) - 1
			if n == len(up) {
				close(done)
			}
			if n < len(up) && !up[n] {
				return errors.New("dial tcp 10.0.0.9:6379: connect: connection refused (password s3cret)")
			}
			return nil
		},
		addr: "10.0.0.9:6379", every: time.Millisecond, remind: 45 * time.Millisecond,
		// Each ping is 10 ms after the one before, however the test is
		// scheduled.
		now:    func() time.Time { return start.Add(time.Duration(i.Load()) * 10 * time.Millisecond) },
		log:    slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)),
		redact: func(s string) string { return strings.ReplaceAll(s, "s3cret", "xxxxx") },
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { w.run(ctx); close(stopped) }()
	<-done
	cancel()
	<-stopped

	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	count := func(s string) int { return strings.Count(logs, s) }
	if n := count("Redis at 10.0.0.9:6379 unreachable: dial tcp 10.0.0.9:6379: connect: connection refused"); n != 2 {
		t.Errorf("%d 'unreachable' lines, want 2 (at start, and on the later loss):\n%s", n, logs)
	}
	if !strings.Contains(logs, "retrying every 1ms") {
		t.Errorf("the line does not say how often it retries:\n%s", logs)
	}
	// 8 failed pings 10 ms apart span 70 ms: one reminder after 45 ms.
	if n := count("still unreachable"); n != 1 {
		t.Errorf("%d reminders, want 1:\n%s", n, logs)
	}
	if n := count("Redis at 10.0.0.9:6379 answers"); n != 2 {
		t.Errorf("%d 'answers' lines, want 2 (one per recovery):\n%s", n, logs)
	}
	if strings.Contains(logs, "s3cret") {
		t.Error("a log line holds the password")
	}
}

// While the watch has said Redis is away, other components' connection
// errors are dropped; other warnings, and everything once Redis is back,
// still show.
func TestRedisDownFilter(t *testing.T) {
	var buf bytes.Buffer
	var down atomic.Bool
	log := slog.New(redisDownFilter{slog.NewTextHandler(&buf, nil), &down}).With("component", "trim")
	conn := errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

	down.Store(true)
	log.Warn("could not trim the results stream", "err", conn)
	log.Warn("provider not configured")
	down.Store(false)
	log.Warn("could not trim the results stream", "err", conn)

	out := buf.String()
	if n := strings.Count(out, "could not trim"); n != 1 {
		t.Errorf("%d trim lines, want 1 (the one after Redis came back):\n%s", n, out)
	}
	if !strings.Contains(out, "provider not configured") {
		t.Errorf("an unrelated warning was dropped:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
