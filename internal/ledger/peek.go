package ledger

import (
	"context"
	"fmt"
)

// Peek reads a task's record without creating or extending it, for a
// process that is not running the task (a cancel): ok is false when the
// task has none (never run, or its record expired or was deleted).
func (l *Ledger) Peek(ctx context.Context, taskID string) (s State, ok bool, err error) {
	m, err := l.rdb.HGetAll(ctx, l.key(taskID)).Result()
	if err != nil {
		return State{}, false, fmt.Errorf("read ledger of task %s: %w", taskID, err)
	}
	if len(m) == 0 {
		return State{}, false, nil
	}
	kv := make([]string, 0, 2*len(m))
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return parse(kv), true, nil
}
