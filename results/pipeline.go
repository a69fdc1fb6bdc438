package results

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// PublishedPipelined is Published queued on pipe, for a caller that
// batches it with other reads into one round trip; call the returned
// function after pipe.Exec.
func (p *Publisher) PublishedPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string) func() (run int, status Status, err error) {
	cmd := pipe.HMGet(ctx, IndexKey(p.stream, taskID), indexRun, indexStatus)
	return func() (int, Status, error) {
		vals, err := cmd.Result()
		if err != nil {
			return 0, "", fmt.Errorf("read result index of task %s: %w", taskID, err)
		}
		run, status := parsePublished(vals)
		return run, status, nil
	}
}

// PublishPipelined is Publish queued on pipe; call the returned function
// after pipe.Exec. Where Redis did not know the script it was not run, and
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
