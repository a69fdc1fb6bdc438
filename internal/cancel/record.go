package cancel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix starts every cancel record's key; the task id follows.
const KeyPrefix = "refreshq:cancel:"

// RecordTTL bounds how long a cancel record outlives the cancel. A result's
// publish deletes the record, so only a record written after its task
// ended, by a canceller that then died, lives this long.
const RecordTTL = 7 * 24 * time.Hour

// Who cancelled, as the result's error names them.
const (
	ActorCLI    = "CLI"
	ActorClient = "client"
	ActorHTTP   = "HTTP"
	ActorUI     = "UI"
)

// Key is the Redis key of a task's cancel record; its value is the actor.
func Key(taskID string) string { return KeyPrefix + taskID }

// Request writes the cancel record of a task: from now on, a worker that
// runs it publishes a cancelled result instead of an outcome of its own.
func Request(ctx context.Context, rdb redis.UniversalClient, taskID, actor string) error {
	if err := rdb.Set(ctx, Key(taskID), actor, RecordTTL).Err(); err != nil {
		return fmt.Errorf("record the cancel of task %s: %w", taskID, err)
	}
	return nil
}

// Recorded returns who cancelled the task, when its record exists.
func Recorded(ctx context.Context, rdb redis.UniversalClient, taskID string) (actor string, ok bool, err error) {
	return recorded(rdb.Get(ctx, Key(taskID)), taskID)
}

// RecordedPipelined is Recorded queued on pipe; call the returned
// function after pipe.Exec.
func RecordedPipelined(ctx context.Context, pipe redis.Pipeliner, taskID string) func() (string, bool, error) {
	cmd := pipe.Get(ctx, Key(taskID))
	return func() (string, bool, error) { return recorded(cmd, taskID) }
}

// recorded reads a GET of a task's cancel record: no record is no cancel.
func recorded(cmd *redis.StringCmd, taskID string) (actor string, ok bool, err error) {
	actor, err = cmd.Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read the cancel record of task %s: %w", taskID, err)
	}
	return actor, true, nil
}

// withdrawScript deletes the record only while it still names ARGV[1], so
// a canceller never removes another's.
var withdrawScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// withdraw deletes a record the task's own end made moot.
func withdraw(ctx context.Context, rdb redis.UniversalClient, taskID, actor string) error {
	return withdrawScript.Run(ctx, rdb, []string{Key(taskID)}, actor).Err()
}

// Message is the cancelled result's error: who cancelled the task and
// where it was, e.g. "cancelled by CLI while it was pending".
func Message(actor, where string) string {
	if actor == "" {
		actor = "an unnamed canceller"
	}
	return "cancelled by " + actor + " " + where
}
