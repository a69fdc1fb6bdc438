package ledger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every ledger key.
const DefaultPrefix = "refreshq:task:"

// Ledger reads and writes task records.
type Ledger struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// New returns a Ledger whose records live ttl after their last write: long
// enough to outlast the task's deadline and the time an operator may take
// to re-run it.
func New(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Ledger {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Ledger{rdb: rdb, prefix: prefix, ttl: ttl}
}

// State is a task's record.
type State struct {
	FirstSeen   time.Time // when a worker first ran the task
	Run         int       // 1, then +1 for each re-run from the archive
	RunStarted  time.Time // when the current run began (FirstSeen for run 1)
	Attempts    int       // upstream requests sent, all runs together
	RateLimited int       // of those, answered 429
	TriesBase   int       // tries spent in earlier runs
	LastStatus  int       // HTTP status of the last response, 0 if none
	LastKind    string    // error kind of the last failed try or wait
	LastError   string
	// SweptRun is the run the sweeper ended after asynq archived the task
	// without running a handler (0: none). Such a run has ended, so the
	// task's next delivery can only be an operator's re-run.
	SweptRun int
}

// EnqueuedAt is when a task counts as enqueued: the producer's enqueued_at
// (payload), clamped to when a worker first saw the task, or to ended for
// a task that ends before any worker saw it (a cancelled one). A
// far-future enqueued_at would otherwise give a negative duration and a
// deadline that never comes. Zero payload: the first sighting (or ended).
func (s State) EnqueuedAt(payload, ended time.Time) time.Time {
	seen := s.FirstSeen
	if seen.IsZero() {
		seen = ended
	}
	if !payload.IsZero() && (seen.IsZero() || payload.Before(seen)) {
		return payload
	}
	return seen
}

// Record fields.
const (
	fFirstSeen   = "first_seen"
	fRun         = "run"
	fRunStarted  = "run_started"
	fAttempts    = "attempts"
	fRateLimited = "rate_limited"
	fTriesBase   = "tries_base"
	fLastStatus  = "last_status"
	fLastKind    = "last_kind"
	fLastError   = "last_error"
	fSwept       = "swept"
)

// beginScript creates the record on a task's first run and returns it.
//
// KEYS[1] record. ARGV[1] now (ms), ARGV[2] TTL (ms).
var beginScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'run', 1, 'run_started', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
`)

func (l *Ledger) key(taskID string) string { return l.prefix + taskID }

// Client is the Redis client the ledger writes with.
func (l *Ledger) Client() redis.UniversalClient { return l.rdb }

// TTL is how long a record lives after its last write.
func (l *Ledger) TTL() time.Duration { return l.ttl }

// Key is the Redis key of a task's record, for a caller that deletes it
// in a script of its own once the record is no longer needed.
func (l *Ledger) Key(taskID string) string { return l.key(taskID) }

// Begin creates the record if this is the task's first run and returns it.
func (l *Ledger) Begin(ctx context.Context, taskID string, now time.Time) (State, error) {
	vals, err := beginScript.Run(ctx, l.rdb, []string{l.key(taskID)}, now.UnixMilli(), l.ttl.Milliseconds()).StringSlice()
	if err != nil {
		return State{}, fmt.Errorf("read ledger of task %s: %w", taskID, err)
	}
	return parse(vals), nil
}

// ParseRecord reads a record from its HGETALL reply, for a script of
// another package that reads the record in its own round trip.
func ParseRecord(kv []string) State { return parse(kv) }

func parse(kv []string) State {
	var s State
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		n, _ := strconv.ParseInt(v, 10, 64)
		switch kv[i] {
		case fFirstSeen:
			s.FirstSeen = time.UnixMilli(n)
		case fRun:
			s.Run = int(n)
		case fRunStarted:
			s.RunStarted = time.UnixMilli(n)
		case fAttempts:
			s.Attempts = int(n)
		case fRateLimited:
			s.RateLimited = int(n)
		case fTriesBase:
			s.TriesBase = int(n)
		case fLastStatus:
			s.LastStatus = int(n)
		case fLastKind:
			s.LastKind = v
		case fLastError:
			s.LastError = v
		case fSwept:
			s.SweptRun = int(n)
		}
	}
	return s
}

// Uncount takes back an attempt that an admission counted for a request
// the caller then did not send (the task's deadline had passed), so the
// result's attempts stay the requests sent.
func (l *Ledger) Uncount(ctx context.Context, taskID string) (int, error) {
	n, err := l.rdb.HIncrBy(ctx, l.key(taskID), fAttempts, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("uncount attempt of task %s: %w", taskID, err)
	}
	return int(n), nil
}

// Outcome is what one try or wait ended with.
type Outcome struct {
	HTTPStatus  int  // 0 to keep the last one (no response this time)
	RateLimited bool // a 429: does not spend MAX_RETRIES
	Kind        string
	Error       string
}

// Record stores an outcome.
func (l *Ledger) Record(ctx context.Context, taskID string, o Outcome) error {
	pipe := l.rdb.TxPipeline()
	l.queueRecord(ctx, pipe, taskID, o)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record outcome of task %s: %w", taskID, err)
	}
	return nil
}

// RecordPipelined is Record queued on pipe, for a caller that sends it
// with other commands in one round trip; call the returned function after
// pipe.Exec.
func (l *Ledger) RecordPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string, o Outcome) func() error {
	cmds := l.queueRecord(ctx, pipe, taskID, o)
	return func() error {
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				return fmt.Errorf("record outcome of task %s: %w", taskID, err)
			}
		}
		return nil
	}
}

func (l *Ledger) queueRecord(ctx context.Context, pipe redis.Pipeliner, taskID string, o Outcome) []redis.Cmder {
	key := l.key(taskID)
	fields := []any{fLastKind, o.Kind, fLastError, o.Error}
	if o.HTTPStatus != 0 {
		fields = append(fields, fLastStatus, o.HTTPStatus)
	}
	cmds := []redis.Cmder{pipe.HSet(ctx, key, fields...)}
	if o.RateLimited {
		cmds = append(cmds, pipe.HIncrBy(ctx, key, fRateLimited, 1))
	}
	return append(cmds, pipe.PExpire(ctx, key, l.ttl))
}

// nextRunScript starts run ARGV[1]+1 only if the record is still at run
// ARGV[1], so two workers handed the same re-run start it once.
var nextRunScript = redis.NewScript(`
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '1')
if run == tonumber(ARGV[1]) then
  local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
  local limited = tonumber(redis.call('HGET', KEYS[1], 'rate_limited') or '0')
  run = run + 1
  redis.call('HSET', KEYS[1], 'run', run, 'run_started', ARGV[2], 'tries_base', attempts - limited)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
`)

// NextRun starts a new run of a task that had ended (an operator re-ran it
// from the archive): a fresh retry budget and deadline, attempts kept.
func (l *Ledger) NextRun(ctx context.Context, taskID string, current int, now time.Time) (State, error) {
	vals, err := nextRunScript.Run(ctx, l.rdb, []string{l.key(taskID)}, current, now.UnixMilli(), l.ttl.Milliseconds()).StringSlice()
	if err != nil {
		return State{}, fmt.Errorf("start next run of task %s: %w", taskID, err)
	}
	return parse(vals), nil
}

// Swept records that run ended in the sweeper, which published its result
// after asynq archived the task without running a handler: the handler
// reads it to tell an operator's re-run of that task from a redelivery.
func (l *Ledger) Swept(ctx context.Context, taskID string, run int) error {
	pipe := l.rdb.TxPipeline()
	pipe.HSet(ctx, l.key(taskID), fSwept, run)
	pipe.PExpire(ctx, l.key(taskID), l.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("mark task %s swept: %w", taskID, err)
	}
	return nil
}
