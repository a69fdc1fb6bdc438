package client

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A task that was never enqueued is reported as unknown through the
// client's own sentinel, with the canceller's explanation in its text.
func TestCancelUnknownTask(t *testing.T) {
	f := setup(t)
	outs, err := f.c.Cancel(context.Background(), "never-enqueued")
	if !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("Cancel error = %v, want one matching ErrUnknownTask", err)
	}
	if len(outs) != 1 || outs[0].State != CancelFailed || !errors.Is(outs[0].Err, ErrUnknownTask) {
		t.Fatalf("outcomes = %+v, want one failed outcome matching ErrUnknownTask", outs)
	}
	if msg := outs[0].Err.Error(); !strings.Contains(msg, "never-enqueued") || !strings.Contains(msg, "unknown task") {
		t.Errorf("error text %q, want it to name the task and say it is unknown", msg)
	}
}
