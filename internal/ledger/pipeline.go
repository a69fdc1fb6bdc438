package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// BeginPipelined is Begin queued on pipe, for a caller that batches it
// with other reads into one round trip; call the returned function after
// pipe.Exec. Where Redis did not know the script (after a restart or
// SCRIPT FLUSH) it was not run, and Begin runs on its own: Begin is safe
// to repeat.
func (l *Ledger) BeginPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string, now time.Time) func() (State, error) {
	cmd := beginScript.EvalSha(ctx, pipe, []string{l.key(taskID)}, now.UnixMilli(), l.ttl.Milliseconds())
	return func() (State, error) {
		vals, err := cmd.StringSlice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return l.Begin(ctx, taskID, now)
		}
		if err != nil {
			return State{}, fmt.Errorf("read ledger of task %s: %w", taskID, err)
		}
		return parse(vals), nil
	}
}
