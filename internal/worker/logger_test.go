package worker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A complaint repeated while Redis is away is logged once per quietFor,
// with the count of repeats held back; other messages are not held back.
func TestQuieterHoldsBackRepeats(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1000, 0)
	q := newQuieter()
	q.now = func() time.Time { return now }

	for i := range 5 {
		q.log(l, slog.LevelError, "dial tcp 127.0.0.1:6379: connection refused (try "+string(rune('0'+i))+")")
		now = now.Add(time.Second)
	}
	q.log(l, slog.LevelWarn, "something else")
	if n := strings.Count(buf.String(), "connection refused"); n != 1 {
		t.Fatalf("%d lines of the repeated message within %s, want 1:\n%s", n, quietFor, buf.String())
	}
	if !strings.Contains(buf.String(), "something else") {
		t.Fatalf("a different message was held back:\n%s", buf.String())
	}
	now = now.Add(quietFor)
	q.log(l, slog.LevelError, "dial tcp 127.0.0.1:6379: connection refused (try 9)")
	if !strings.Contains(buf.String(), "repeated=4") {
		t.Fatalf("the next line does not count the 4 held back:\n%s", buf.String())
	}
}
