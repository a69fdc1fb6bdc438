package quota

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/internal/ledger"
	"github.com/refreshq/refreshq/internal/ratelimit"
	"github.com/refreshq/refreshq/results"
)

// DefaultReserve is the share of a key's grants kept for lower lanes
// while they have tasks waiting (LANE_RESERVE).
const DefaultReserve = 0.10

// leaseSlack is how long past its due time a line entry outlives a worker
// that does not come back for it.
const leaseSlack = time.Second

// Guard is what held a request back: one of the API key's guards
// (cooldown, breaker, daily cap), its budget, or the waiting line, where
// tasks of a higher-priority queue come first.
type Guard string

// Guards, in the order the admission checks them. The first three are
// the names internal/ratelimit's rl_guard returns.
const (
	GuardCooldown Guard = "cooldown"
	GuardBreaker  Guard = "breaker"
	GuardDailyCap Guard = "daily_cap"
	GuardBudget   Guard = "budget"
	GuardPriority Guard = "priority"
)

// Verdict is what the admission decided.
type Verdict string

// Verdicts.
const (
	// Admitted: send the request; it is counted in the ledger and the
	// budget.
	Admitted Verdict = "admitted"
	// Refused: a guard holds the request back for Wait.
	Refused Verdict = "refused"
	// Published: the task's run already has its result.
	Published Verdict = "published"
	// Expired: the task's deadline has passed; nothing was counted.
	Expired Verdict = "expired"
	// Begun: the record is read or created; no request was asked for.
	Begun Verdict = "begun"
)

// Options configure an Engine.
type Options struct {
	Limiter *ratelimit.Limiter
	Ledger  *ledger.Ledger
	// Stream is the results stream, whose index records a run's result.
	Stream string
	// Lanes are the queues in priority order, highest first (QUEUES by
	// weight). A queue not listed ranks below them all.
	Lanes []string
	// Reserve is the share of a key's grants kept for lower lanes while
	// they have tasks waiting; 0 keeps none.
	Reserve float64
	// LineWait is the longest wait for the budget a task holds its place
	// in the line, sleeping in the worker; one that must wait longer
	// leaves the line and is handed back. It should be above the
	// shortest window's Per + margin, so that a task that comes just after
	// the budget's slots were taken can wait for the next one in place.
	LineWait time.Duration
}

// Engine admits upstream requests. It is safe for concurrent use.
type Engine struct {
	opt Options
}

// New returns an Engine.
func New(opt Options) (*Engine, error) {
	if opt.Limiter == nil || opt.Ledger == nil || opt.Stream == "" {
		return nil, errors.New("quota: Limiter, Ledger and Stream are required")
	}
	if opt.Reserve < 0 || opt.Reserve >= 1 {
		return nil, fmt.Errorf("quota: reserve %v must be at least 0 and below 1", opt.Reserve)
	}
	return &Engine{opt: opt}, nil
}

// Ticket is a task at the admission point.
type Ticket struct {
	TaskID string
	Queue  string
	// Tenant shares the key's budget round-robin with the queue's other
	// tenants; "" is one tenant of its own.
	Tenant string
	// Now is the task's clock: ledger times and the deadline use it.
	Now time.Time
	// EnqueuedAt (zero: when a worker first saw the task), TaskDeadline
	// and the payload's Deadline (zero: none) place the deadline.
	EnqueuedAt   time.Time
	TaskDeadline time.Duration
	Deadline     time.Time
	// Request, when set, asks to send one upstream request now.
	Request *Request
}

// Request is the upstream request a ticket asks for: its API key, budget
// and daily cap (0 = none).
type Request struct {
	Key      ratelimit.Key
	Budget   ratelimit.Budget
	DailyCap int
}

// Admission is AdmitPipelined's answer.
type Admission struct {
	Verdict Verdict
	// State is the task's ledger record after the call.
	State ledger.State
	// PublishedRun and PublishedStatus describe the result on record
	// (PublishedRun 0: none).
	PublishedRun    int
	PublishedStatus results.Status
	// Guard and Wait, when Refused: what holds the request back and how
	// long until it may pass (the task's place in the line included).
	Guard Guard
	Wait  time.Duration
	// Probe: the request is the breaker's half-open probe; report it so.
	Probe bool
	// InLine: the task holds a place in the key's waiting line; sleep
	// through Wait and ask again, or the place is lost.
	InLine bool
}

// AdmitPipelined queues on pipe the one script that decides whether the
// ticket's task may send its request now (see the package doc for the
// order of the checks), so that the caller sends it in one round trip with
// its own commands; call the returned function after pipe.Exec. Where
// Redis did not know the script it was not run, and it runs on its own
// then.
func (e *Engine) AdmitPipelined(ctx context.Context, pipe redis.Pipeliner, t Ticket) func() (Admission, error) {
	keys, args, err := e.script(t)
	if err != nil {
		return func() (Admission, error) { return Admission{}, err }
	}
	cmd := admitScript.EvalSha(ctx, pipe, keys, args...)
	return func() (Admission, error) {
		vals, err := cmd.Slice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			vals, err = admitScript.Run(ctx, e.opt.Ledger.Client(), keys, args...).Slice()
		}
		if err != nil {
			return Admission{}, fmt.Errorf("admit task %s: %w", t.TaskID, err)
		}
		return parse(vals, t)
	}
}

func (e *Engine) script(t Ticket) ([]string, []any, error) {
	keys := []string{e.opt.Ledger.Key(t.TaskID), results.IndexKey(e.opt.Stream, t.TaskID), ""}
	mode := "0"
	var checks ratelimit.Checks
	if t.Request != nil {
		mode = "1"
		var err error
		if checks, err = e.opt.Limiter.Checks(t.Request.Key, t.Request.Budget, t.Request.DailyCap); err != nil {
			return nil, nil, err
		}
		keys[2] = e.opt.Limiter.KeyPrefix(t.Request.Key) + "line"
		keys = append(keys, checks.Keys...)
	}
	args := make([]any, 0, 14+len(e.opt.Lanes)+len(checks.Args))
	args = append(args, e.opt.Limiter.Clock(), t.Now.UnixMilli(), e.opt.Ledger.TTL().Milliseconds(),
		unixMilli(t.EnqueuedAt), t.TaskDeadline.Milliseconds(), unixMilli(t.Deadline), mode,
		t.Queue, TenantID(t.Tenant), t.TaskID, e.opt.LineWait.Milliseconds(),
		strconv.FormatFloat(e.opt.Reserve, 'f', -1, 64), leaseSlack.Milliseconds(), len(e.opt.Lanes))
	for _, l := range e.opt.Lanes {
		args = append(args, l)
	}
	return keys, append(args, checks.Args...), nil
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// TenantID is how a tenant is named in Redis: a short hash, so that any
// string a producer sends keeps the line's entries small and parseable.
func TenantID(tenant string) string {
	if tenant == "" {
		return "-"
	}
	sum := sha256.Sum256([]byte(tenant))
	return hex.EncodeToString(sum[:8])
}

func parse(vals []any, t Ticket) (Admission, error) {
	if len(vals) < 8 {
		return Admission{}, fmt.Errorf("admit task %s: unexpected reply %v", t.TaskID, vals)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	num := func(v any) int64 { n, _ := v.(int64); return n }
	a := Admission{
		Verdict:         Verdict(str(vals[0])),
		Wait:            time.Duration(num(vals[1])) * time.Millisecond,
		Guard:           Guard(str(vals[2])),
		Probe:           num(vals[3]) == 1,
		PublishedRun:    int(num(vals[4])),
		PublishedStatus: results.Status(str(vals[5])),
		InLine:          num(vals[7]) == 1,
	}
	if num(vals[6]) == 1 {
		seen := time.UnixMilli(t.Now.UnixMilli())
		a.State = ledger.State{FirstSeen: seen, Run: 1, RunStarted: seen}
		if a.Verdict == Admitted {
			a.State.Attempts = 1
		}
		return a, nil
	}
	kv := make([]string, 0, len(vals)-8)
	for _, v := range vals[8:] {
		kv = append(kv, str(v))
	}
	a.State = ledger.ParseRecord(kv)
	return a, nil
}
