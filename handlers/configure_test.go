package handlers_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/refreshq/refreshq/handlers"
	"github.com/refreshq/refreshq/tasks"
)

// TestConfigureServerKeepsTheServersOwnTasks: refreshq's retry rules apply
// to refreshq's tasks, and a server's own tasks keep the rules it set.
func TestConfigureServerKeepsTheServersOwnTasks(t *testing.T) {
	theirs := asynq.NewTask("email:send", nil)
	ours := asynq.NewTask(tasks.TypeHookedAccountRefresh, nil)
	boom := errors.New("boom")

	cfg := asynq.Config{
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return 42 * time.Minute },
		IsFailure:      func(err error) bool { return err != nil },
	}
	handlers.ConfigureServer(&cfg)
	if d := cfg.RetryDelayFunc(3, boom, theirs); d != 42*time.Minute {
		t.Errorf("their task's delay = %s, want their own 42m", d)
	}
	// A refreshq task whose handler never returned runs again promptly.
	if d := cfg.RetryDelayFunc(3, asynq.ErrLeaseExpired, ours); d <= 0 || d > 2*time.Second {
		t.Errorf("a crashed refreshq task's delay = %s, want about a second", d)
	}
	if !cfg.IsFailure(boom) {
		t.Error("their error is no longer a failure: their tasks would retry forever")
	}

	var none asynq.Config
	handlers.ConfigureServer(&none)
	if none.IsFailure(asynq.ErrLeaseExpired) {
		t.Error("with no IsFailure of the server's own, a lost lease counts as a failure")
	}
	if d := none.RetryDelayFunc(0, boom, theirs); d <= 0 {
		t.Errorf("their task's delay = %s with asynq's default, want > 0", d)
	}
}
