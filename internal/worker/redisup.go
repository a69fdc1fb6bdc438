package worker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/redisconn"
)

// Redis reachability, as the worker reports it.
const (
	// redisCheckEvery is how often Redis is pinged.
	redisCheckEvery = time.Second
	// redisRemindEvery is how often a Redis that stays away is mentioned
	// again.
	redisRemindEvery = time.Minute
)

// redisWatch pings Redis and logs what an operator needs: one line when it
// is unreachable (at start or later), a reminder at most every
// redisRemindEvery while it stays so, and one line when it answers again.
// While it is away, asynq's and go-redis's own connection errors are left
// out of the log (see isConnError): they would say the same thing dozens
// of times.
type redisWatch struct {
	ping   func(ctx context.Context) error
	addr   string // host:port, for the log lines
	every  time.Duration
	remind time.Duration
	log    *slog.Logger
	redact func(string) string
	now    func() time.Time // nil: time.Now
	down   atomic.Bool
}

// newRedisWatch watches rdb, which redisOpt (from redisURL) describes.
func newRedisWatch(rdb redis.UniversalClient, redisOpt asynq.RedisConnOpt, redisURL string, log *slog.Logger) *redisWatch {
	addr := redisAddr(redisOpt)
	return &redisWatch{
		ping: func(ctx context.Context) error {
			err := rdb.Ping(ctx).Err()
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				// go-redis retried until the deadline; a plain dial says why.
				if o, ok := redisOpt.(asynq.RedisClientOpt); ok && o.Network != "unix" {
					conn, derr := net.DialTimeout("tcp", hostPort(o.Addr), 500*time.Millisecond)
					if derr != nil {
						return derr
					}
					conn.Close()
				}
			}
			return err
		},
		addr: addr, every: redisCheckEvery, remind: redisRemindEvery, log: log,
		redact: func(s string) string { return redisconn.Redact(s, redisURL) },
	}
}

// run pings until ctx ends.
func (w *redisWatch) run(ctx context.Context) {
	var (
		known    bool // whether a first answer (or failure) was logged
		lastLine time.Time
		since    time.Time
	)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(w.every, time.Second))
		err := w.ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if w.now != nil {
			now = w.now()
		}
		switch {
		case err != nil && (!known || !w.down.Load()):
			w.down.Store(true)
			since, lastLine = now, now
			w.log.Error("Redis at "+w.addr+" unreachable: "+w.redact(err.Error())+"; retrying every "+w.every.String(),
				"redis", w.addr)
		case err != nil && now.Sub(lastLine) >= w.remind:
			lastLine = now
			w.log.Error("Redis at "+w.addr+" still unreachable: "+w.redact(err.Error())+"; retrying every "+w.every.String(),
				"redis", w.addr, "down_for", now.Sub(since).Round(time.Second).String())
		case err == nil && (!known || w.down.Load()):
			attrs := []any{"redis", w.addr}
			if known {
				attrs = append(attrs, "down_for", now.Sub(since).Round(time.Second).String())
			}
			w.down.Store(false)
			w.log.Info("Redis at "+w.addr+" answers", attrs...)
		}
		known = true
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redisDownFilter drops warnings and errors about connection failures
// while down is set: redisWatch has said Redis is away, once.
type redisDownFilter struct {
	slog.Handler
	down *atomic.Bool
}

// Handle implements slog.Handler.
func (f redisDownFilter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && f.down.Load() {
		text := r.Message
		r.Attrs(func(a slog.Attr) bool {
			text += " " + a.Value.String()
			return true
		})
		if isConnError(text) {
			return nil
		}
	}
	return f.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (f redisDownFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return redisDownFilter{f.Handler.WithAttrs(attrs), f.down}
}

// WithGroup implements slog.Handler.
func (f redisDownFilter) WithGroup(name string) slog.Handler {
	return redisDownFilter{f.Handler.WithGroup(name), f.down}
}

// connError matches the connection failures asynq and go-redis log on
// their own while Redis is away.
var connError = regexp.MustCompile(`(?i)connection refused|dial tcp|i/o timeout|connection reset|broken pipe|no route to host|no such host|EOF|LOADING|use of closed network connection|context deadline exceeded`)

// isConnError reports whether msg is one of those failures; redisWatch
// reports them instead, once.
func isConnError(msg string) bool { return connError.MatchString(msg) }

// redisAddr names where opt points, for log lines: host:port, the
// Sentinel master's name, or a socket path. It never holds a password.
func redisAddr(opt asynq.RedisConnOpt) string {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		if o.Network == "unix" {
			return o.Addr
		}
		return hostPort(o.Addr)
	case asynq.RedisFailoverClientOpt:
		return "sentinel " + o.MasterName + " via " + strings.Join(o.SentinelAddrs, ",")
	case asynq.RedisClusterClientOpt:
		return strings.Join(o.Addrs, ",")
	}
	return "REDIS_URL"
}

func hostPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(addr, "6379")
}
