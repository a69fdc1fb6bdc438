package results

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// PublishPipelined is the batched form of Publish, for a caller that
// shares one pipeline, and so one round trip, between the publish and its
// own commands (the handler sends a task's result with the rate limiter's
// update from the same reply, batched with other tasks'). It queues the publish on pipe; call the returned function after
// pipe.Exec. Where Redis did not know the script it was not run, and
// Publish runs on its own: exactly once still holds, since the check and
// the XADD stay in one script.
func (p *Publisher) PublishPipelined(ctx context.Context, pipe redis.Pipeliner, e Entry, run int, done ...string) func() (id string, added bool, err error) {
	if run < 1 {
		return func() (string, bool, error) {
			return "", false, fmt.Errorf("publish result of task %s: run %d, want ≥ 1", e.TaskID, run)
		}
	}
	cmd := publishScript.EvalSha(ctx, pipe, p.publishKeys(e, done), p.publishArgs(e, run)...)
	return func() (string, bool, error) {
		res, err := cmd.Slice()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			return p.Publish(ctx, e, run, done...)
		}
		if err != nil {
			return "", false, fmt.Errorf("publish result of task %s: %w", e.TaskID, err)
		}
		return publishReply(e.TaskID, res)
	}
}
