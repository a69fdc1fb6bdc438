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

// Tries is how many requests of the current run counted against
// MAX_RETRIES: every request but the 429s.
func (s State) Tries() int { return s.Attempts - s.RateLimited - s.TriesBase }

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

// beginScript creates the record on a task's first run, checks the
// guards, optionally counts an attempt (see BeginPipelined), and returns
// the record.
//
// KEYS[1] record, KEYS[2..] guards. ARGV[1] now (ms), ARGV[2] TTL (ms),
// ARGV[3] count (1/0), ARGV[4..] each guard's field (” = the key itself).
// Returns the record's HGETALL, then the pseudo-fields _guard (the first
// guard present, 1-based, 0 for none) and _counted (1/0). A record it has
// just created, with no guard present, is not read back: it holds what
// the script wrote, and the reply says _new instead.
var beginScript = redis.NewScript(`
local created = redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[1]) == 1
local guard = 0
-- One EXISTS answers the usual case, where no guard's key exists.
if #KEYS > 1 and redis.call('EXISTS', unpack(KEYS, 2)) > 0 then
  for i = 2, #KEYS do
    local field = ARGV[i + 2]
    local present
    if field == '' then
      present = redis.call('EXISTS', KEYS[i]) == 1
    else
      present = redis.call('HEXISTS', KEYS[i], field) == 1
    end
    if present then
      guard = i - 1
      break
    end
  end
end
local counted = ARGV[3] == '1' and guard == 0
if created and counted then
  redis.call('HSET', KEYS[1], 'run', 1, 'run_started', ARGV[1], 'attempts', 1)
elseif created then
  redis.call('HSET', KEYS[1], 'run', 1, 'run_started', ARGV[1])
elseif counted then
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local flag = counted and '1' or '0'
if created and guard == 0 then
  return {'_new', '1', '_guard', '0', '_counted', flag}
end
local rec = redis.call('HGETALL', KEYS[1])
rec[#rec + 1] = '_guard'
rec[#rec + 1] = tostring(guard)
rec[#rec + 1] = '_counted'
rec[#rec + 1] = flag
return rec
`)

func (l *Ledger) key(taskID string) string { return l.prefix + taskID }

// Key is the Redis key of a task's record, for a caller that deletes it
// in a script of its own once the record is no longer needed.
func (l *Ledger) Key(taskID string) string { return l.key(taskID) }

// Begin creates the record if this is the task's first run and returns it.
func (l *Ledger) Begin(ctx context.Context, taskID string, now time.Time) (State, error) {
	b, err := l.begin(ctx, taskID, now, false, nil)
	return b.State, err
}

func (l *Ledger) begin(ctx context.Context, taskID string, now time.Time, count bool, unless []Guard) (Began, error) {
	keys, args := l.beginArgs(taskID, now, count, unless)
	vals, err := beginScript.Run(ctx, l.rdb, keys, args...).StringSlice()
	if err != nil {
		return Began{}, fmt.Errorf("read ledger of task %s: %w", taskID, err)
	}
	return parseBegin(vals, now), nil
}

func (l *Ledger) beginArgs(taskID string, now time.Time, count bool, unless []Guard) ([]string, []any) {
	keys := make([]string, 1, 1+len(unless))
	keys[0] = l.key(taskID)
	args := make([]any, 3, 3+len(unless))
	args[0], args[1], args[2] = now.UnixMilli(), l.ttl.Milliseconds(), "0"
	if count {
		args[2] = "1"
	}
	for _, g := range unless {
		keys = append(keys, g.Key)
		args = append(args, g.Field)
	}
	return keys, args
}

// parseBegin splits beginScript's reply into the record and the guard
// and count it reports after it. now is the time Begin passed, which a
// record the script has just created holds.
func parseBegin(vals []string, now time.Time) Began {
	var b Began
	created := false
	for len(vals) >= 2 {
		n := len(vals)
		switch vals[n-2] {
		case "_counted":
			b.Counted = vals[n-1] == "1"
		case "_guard":
			b.Guard, _ = strconv.Atoi(vals[n-1])
		case "_new":
			created = true
		default:
			b.State = parse(vals)
			return b
		}
		vals = vals[:n-2]
	}
	if created {
		seen := time.UnixMilli(now.UnixMilli())
		b.State = State{FirstSeen: seen, Run: 1, RunStarted: seen}
		if b.Counted {
			b.State.Attempts = 1
		}
		return b
	}
	b.State = parse(vals)
	return b
}

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

// Attempt counts one upstream request about to be sent and returns the
// new total. It is counted before sending so that a worker killed
// mid-request still leaves the request counted: attempts are at least once.
func (l *Ledger) Attempt(ctx context.Context, taskID string) (int, error) {
	pipe := l.rdb.Pipeline()
	got := l.AttemptPipelined(ctx, pipe, taskID)
	_, _ = pipe.Exec(ctx) // the count's error is read from it
	return got()
}

// Uncount takes back an attempt that BeginPipelined counted for a request
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
	key := l.key(taskID)
	fields := []any{fLastKind, o.Kind, fLastError, o.Error}
	if o.HTTPStatus != 0 {
		fields = append(fields, fLastStatus, o.HTTPStatus)
	}
	pipe.HSet(ctx, key, fields...)
	if o.RateLimited {
		pipe.HIncrBy(ctx, key, fRateLimited, 1)
	}
	pipe.PExpire(ctx, key, l.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record outcome of task %s: %w", taskID, err)
	}
	return nil
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
