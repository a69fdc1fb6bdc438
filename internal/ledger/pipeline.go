package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Guard is a key, or a field of a hash, whose presence holds a task's
// next request back: a cooldown, an open breaker, an earlier result.
type Guard struct {
	Key   string
	Field string // "" for the key itself
}

// Began is what BeginPipelined found.
type Began struct {
	State State
	// Guard is the first of the guards present, counting from 1; 0 when
	// none was.
	Guard int
	// Counted: the attempt was counted (count was asked and no guard was
	// present).
	Counted bool
}

// BeginPipelined is Begin queued on pipe, for a caller that batches it
// with other commands into one round trip; call the returned function
// after pipe.Exec. It also reports the first of the guards present, so a
// caller learns in the same script whether, say, an earlier result or a
// cooldown exists, and reads it only then.
//
// With count set it also counts the attempt the caller is about to send,
// as Attempt would, unless a guard is present: the common task, which
// nothing holds back, then spends no round trip of its own on Attempt. A
// caller that then does not send after all calls Uncount.
//
// Where Redis did not know the script (after a restart or SCRIPT FLUSH)
// it was not run, and it runs again on its own: it is safe to repeat.
func (l *Ledger) BeginPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string, now time.Time, count bool, unless ...Guard) func() (Began, error) {
	keys, args := l.beginArgs(taskID, now, count, unless)
	cmd := beginScript.EvalSha(ctx, pipe, keys, args...)
	return func() (Began, error) {
		vals, err := cmd.StringSlice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return l.begin(ctx, taskID, now, count, unless)
		}
		if err != nil {
			return Began{}, fmt.Errorf("read ledger of task %s: %w", taskID, err)
		}
		return parseBegin(vals, now), nil
	}
}

// AttemptPipelined is Attempt queued on pipe; call the returned function
// after pipe.Exec.
func (l *Ledger) AttemptPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string) func() (int, error) {
	n := pipe.HIncrBy(ctx, l.key(taskID), fAttempts, 1)
	exp := pipe.PExpire(ctx, l.key(taskID), l.ttl)
	return func() (int, error) {
		if err := errors.Join(n.Err(), exp.Err()); err != nil {
			return 0, fmt.Errorf("count attempt of task %s: %w", taskID, err)
		}
		return int(n.Val()), nil
	}
}
