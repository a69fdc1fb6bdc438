package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// NewLogger returns JSON logs, or text when format is "text", or "auto" and
// w is a terminal: machines read production logs, people read terminals.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" || (format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// asynqLogger sends asynq's own log lines to slog, marked as asynq's.
// Its warnings and errors go through a quieter: while Redis is away asynq
// repeats the same complaint several times a second, and a 3 a.m. log
// should say it once every few seconds with a count.
type asynqLogger struct {
	l *slog.Logger
	q *quieter
}

var _ asynq.Logger = asynqLogger{}

func newAsynqLogger(l *slog.Logger) asynqLogger { return asynqLogger{l: l, q: newQuieter()} }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any) {
	msg := fmt.Sprint(args...)
	// asynq says this of every task a handler ended with a failed result;
	// the handler has already logged that result, with more to say.
	if strings.HasPrefix(msg, "Retry exhausted for task") {
		return
	}
	if isConnError(msg) {
		return // redisWatch reports Redis's reachability, once
	}
	a.q.log(a.l, slog.LevelWarn, msg)
}
func (a asynqLogger) Error(args ...any) {
	msg := fmt.Sprint(args...)
	if isConnError(msg) {
		return
	}
	a.q.log(a.l, slog.LevelError, msg)
}
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)); os.Exit(1) }

// RedisLogger adapts slog for go-redis's own messages (dial failures and
// the like), quieted like asynq's. Pass it to redis.SetLogger.
type RedisLogger struct {
	l *slog.Logger
	q *quieter
}

// NewRedisLogger returns a RedisLogger writing warnings to l.
func NewRedisLogger(l *slog.Logger) RedisLogger { return RedisLogger{l: l, q: newQuieter()} }

// Printf implements go-redis's logging interface.
func (r RedisLogger) Printf(_ context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if isConnError(msg) {
		return // redisWatch reports Redis's reachability, once
	}
	r.q.log(r.l, slog.LevelWarn, msg)
}

// quietFor is how long a repeated message is held back.
const quietFor = 10 * time.Second

// quieter lets a message through once per quietFor; repeats in between are
// counted and reported with the next one let through.
type quieter struct {
	mu   sync.Mutex
	seen map[string]*quietEntry
	now  func() time.Time
}

type quietEntry struct {
	last       time.Time
	suppressed int
}

func newQuieter() *quieter { return &quieter{seen: map[string]*quietEntry{}, now: time.Now} }

// digits are masked in the key so that "queue 3 ... at 12:00:01" and the
// same message a second later count as one.
var digits = regexp.MustCompile(`[0-9]+`)

func (q *quieter) log(l *slog.Logger, level slog.Level, msg string) {
	key := digits.ReplaceAllString(msg, "#")
	now := q.now()
	q.mu.Lock()
	e := q.seen[key]
	if e == nil {
		if len(q.seen) > 1000 { // bound memory against endlessly varied messages
			clear(q.seen)
		}
		e = &quietEntry{}
		q.seen[key] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < quietFor {
		e.suppressed++
		q.mu.Unlock()
		return
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	q.mu.Unlock()
	if n > 0 {
		l.Log(context.Background(), level, msg, "repeated", n, "in_last", quietFor)
		return
	}
	l.Log(context.Background(), level, msg)
}
