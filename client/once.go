package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/refreshq/refreshq/results"
	"github.com/refreshq/refreshq/tasks"
)

// MaxTaskIDBytes bounds a producer-chosen task id.
const MaxTaskIDBytes = 128

// ValidateTaskID checks a producer-chosen task id: 1 to MaxTaskIDBytes
// letters, digits, '-', '_', '.' or ':', so it is safe in a URL path and a
// Redis key. It returns a *tasks.ValidationError for field task_id.
func ValidateTaskID(id string) error {
	if id == "" || len(id) > MaxTaskIDBytes {
		return &tasks.ValidationError{Field: "task_id", Problem: fmt.Sprintf("must be 1 to %d characters", MaxTaskIDBytes)}
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == ':':
		default:
			return &tasks.ValidationError{Field: "task_id", Problem: fmt.Sprintf("%q may hold only letters, digits, '-', '_', '.' and ':'", id)}
		}
	}
	return nil
}

// ErrTaskIDTaken is matched (errors.Is) by every *TaskIDTakenError.
var ErrTaskIDTaken = errors.New("task id taken")

// TaskIDTakenError says a task id already names a different refresh (or a
// task enqueued without EnqueueOnce); nothing was enqueued.
type TaskIDTakenError struct {
	TaskID string
	Reason string
}

// Error names the id and why it cannot be used.
func (e *TaskIDTakenError) Error() string {
	return fmt.Sprintf("task id %s is taken: %s; choose another id, or send the same refresh to get that task", e.TaskID, e.Reason)
}

// Is makes errors.Is(err, ErrTaskIDTaken) true.
func (e *TaskIDTakenError) Is(target error) bool { return target == ErrTaskIDTaken }

// claimSlack is how long a task id claim outlives the task's result index
// beyond the task's own life: for clock skew between producer and Redis.
const claimSlack = time.Hour

// claimKey holds, for a task id given to EnqueueOnce, the fingerprint of
// its refresh. It sits beside the results stream's key, as the result index
// does.
func claimKey(stream, taskID string) string { return stream + ":taskid:" + taskID }

// EnqueueOnce enqueues r as task taskID, making taskID an idempotency key
// for as long as the task or its result is kept (the result index's TTL
// after the task's deadline): a second call with the same id and the same
// refresh enqueues nothing and returns existing=true; one with a different
// refresh returns a *TaskIDTakenError.
//
// The same refresh means the same provider, subject, queue, meta and
// tenant; the timing options (In, At, Deadline, Unique) are not compared,
// so a retry that recomputes them still finds its task.
//
// Other errors are Enqueue's: a *tasks.ValidationError or *OptionError, a
// *DuplicateError under Unique, an *InDoubtError.
func (c *Client) EnqueueOnce(ctx context.Context, taskID string, r tasks.Refresh, opts ...EnqueueOption) (existing bool, err error) {
	if err := ValidateTaskID(taskID); err != nil {
		return false, err
	}
	s, err := enqueueOptions(opts)
	if err != nil {
		return false, err
	}
	s.traceFrom(ctx)
	r, err = c.resolve(r, &s)
	if err != nil {
		return false, err
	}
	s.taskID = taskID
	fp, err := fingerprint(r)
	if err != nil {
		return false, err
	}
	now := time.Now()
	key := claimKey(c.stream, taskID)
	ok, err := c.rdb.SetNX(ctx, key, fp, claimTTL(&s, r.Deadline, c.taskDeadline, now)).Result()
	if err != nil {
		return false, fmt.Errorf("enqueue %s %s: claim task id %s in %s: %w", r.Provider, r.Subject(), taskID, c.where, err)
	}
	if !ok {
		held, err := c.rdb.Get(ctx, key).Result()
		switch {
		case errors.Is(err, redis.Nil):
			// The claim expired between the two calls: its task and result
			// are gone, so the id is free again.
			return c.EnqueueOnce(ctx, taskID, r, opts...)
		case err != nil:
			return false, fmt.Errorf("enqueue %s %s: read task id %s in %s: %w", r.Provider, r.Subject(), taskID, c.where, err)
		case held == fp:
			return true, nil
		}
		return false, &TaskIDTakenError{TaskID: taskID, Reason: "it was given to a different refresh (provider, subject, queue or meta differ)"}
	}
	release := func() { _ = releaseScript.Run(context.WithoutCancel(ctx), c.rdb, []string{key}, fp).Err() }

	// An id may also name a task or result from a producer that did not
	// claim it (Enqueue with TaskID, another service speaking asynq).
	if used, err := c.idInUse(ctx, taskID); err != nil || used {
		release()
		if err != nil {
			return false, fmt.Errorf("enqueue %s %s: look up task id %s in %s: %w", r.Provider, r.Subject(), taskID, c.where, err)
		}
		return false, &TaskIDTakenError{TaskID: taskID, Reason: "a task or result with this id was made without it"}
	}
	o := c.enqueue(ctx, r, &s, now)
	switch {
	case o.State == Enqueued:
		return false, nil
	case o.State == InDoubt:
		return false, o.Err // the claim stays: the task may exist
	case errors.Is(o.Err, asynq.ErrTaskIDConflict):
		release()
		return false, &TaskIDTakenError{TaskID: taskID, Reason: "a task with this id was enqueued meanwhile without it"}
	}
	release()
	return false, o.Err
}

// idInUse says whether a result or a task on any of the Client's queues
// has the id.
func (c *Client) idInUse(ctx context.Context, taskID string) (bool, error) {
	keys := []string{results.IndexKey(c.stream, taskID)}
	for _, q := range c.queues {
		keys = append(keys, asynqTaskKey(q, taskID))
	}
	n, err := c.rdb.Exists(ctx, keys...).Result()
	return n > 0, err
}

// claimTTL keeps a claim while the task may still run (until its deadline,
// or taskDeadline after it is due) and its result is indexed.
func claimTTL(s *enqueueSettings, deadline time.Time, taskDeadline time.Duration, now time.Time) time.Duration {
	due := now
	switch {
	case s.hasIn:
		due = now.Add(s.in)
	case s.at.After(now):
		due = s.at
	}
	end := due.Add(taskDeadline)
	if !deadline.IsZero() && deadline.Before(end) {
		end = deadline
	}
	return max(end.Sub(now), 0) + results.DefaultIndexTTL + claimSlack
}

// fingerprint identifies what a refresh asks for: provider, subject, queue,
// meta and tenant, meta compared as JSON (key order and spacing do not
// matter).
// Claims in Redis hold its output, so the formula stays: a provider's new
// subject field must enter it such that refreshes without that field keep
// their fingerprint (TestFingerprintCoversEverySubjectField fails until it
// enters at all).
func fingerprint(r tasks.Refresh) (string, error) {
	var meta any
	if len(r.Meta) > 0 {
		dec := json.NewDecoder(bytes.NewReader(r.Meta))
		dec.UseNumber()
		if err := dec.Decode(&meta); err != nil {
			return "", &tasks.ValidationError{Field: "meta", Problem: "must be a JSON object"}
		}
	}
	b, err := json.Marshal([]any{r.Provider, r.TeamID, r.Platform, r.AccountID, r.Queue, meta, r.Tenant})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
