package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// TaskState is where a task is in asynq: what a caller can learn about a
// task that has no result yet.
type TaskState string

// The states TaskState reports.
const (
	StatePending   TaskState = "pending"
	StateScheduled TaskState = "scheduled"
	StateActive    TaskState = "active"
	StateRetry     TaskState = "retry"
	// StateArchived and StateCompleted are tasks that ended; their result
	// is in the results stream while it is kept.
	StateArchived  TaskState = "archived"
	StateCompleted TaskState = "completed"
	// StateUnknown is a task that no queue holds: never enqueued, ended and
	// deleted, or enqueued on a queue the Client does not serve.
	StateUnknown TaskState = "unknown"
)

// TaskState says where taskID is in asynq, looking in every queue of the
// Client at once (one round trip).
func (c *Client) TaskState(ctx context.Context, taskID string) (TaskState, error) {
	names := c.queues
	cmds := make([]*redis.StringCmd, len(names))
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range names {
			// asynq keeps each task in a hash whose "state" field names its
			// state; reading it is cheaper than Inspector.GetTaskInfo, which
			// also decodes the payload, per queue.
			cmds[i] = p.HGet(ctx, asynqTaskKey(q, taskID), "state")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("look up task %s in %s: %w", taskID, c.where, err)
	}
	for _, cmd := range cmds {
		if s, err := cmd.Result(); err == nil && s != "" {
			return TaskState(s), nil
		}
	}
	return StateUnknown, nil
}

// asynqTaskKey is the hash asynq keeps a task in.
func asynqTaskKey(queue, taskID string) string { return "asynq:{" + queue + "}:t:" + taskID }
