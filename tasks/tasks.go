package tasks

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// Task type names. Never rename one: tasks already in Redis carry them.
const (
	TypeBundleSocialProfileRefresh = "bundle_social:profile_refresh"
	TypeHookedAccountRefresh       = "hooked:account_refresh"
)

// Provider ids, as they appear in the results stream and in file lines.
const (
	ProviderBundleSocial = "bundle_social"
	ProviderHooked       = "hooked"
)

// Limits on what a payload may carry.
const (
	MaxPayloadBytes = 64 << 10 // a larger payload is invalid
	MaxMetaBytes    = 4 << 10  // meta is copied into every result entry
	MaxIDLength     = 512      // team and account ids
)

// Default options given by NewTask.
const (
	DefaultQueue = "default"

	// DefaultMaxRetry is asynq's retry cap, set far above MAX_RETRIES on
	// purpose: the worker counts tries itself (429s and budget waits are not
	// failures) and ends every task by publishing its result. asynq's own cap
	// would archive a task without running the handler.
	DefaultMaxRetry = 1000

	// DefaultTimeout bounds one handler run. The worker's UPSTREAM_TIMEOUT
	// bounds each request; this is only a backstop.
	DefaultTimeout = 15 * time.Minute
)

// DefaultTaskDeadline is how long after its enqueue a task may wait or
// retry before a worker ends it failed, when the worker's TASK_DEADLINE is
// unset. Producers rely on it too: a task id stays claimed while its task
// may still run.
const DefaultTaskDeadline = 24 * time.Hour

// NewTask validates r and returns its task: the provider's type, the
// payload, and refreshq's default options (r's queue, else DefaultQueue),
// overridden by opts.
func NewTask(r Refresh, opts ...asynq.Option) (*asynq.Task, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := r.Payload()
	if err != nil {
		return nil, err
	}
	queue := r.Queue
	if queue == "" {
		queue = DefaultQueue
	}
	// Defaults come first so a caller's options override them.
	all := append([]asynq.Option{
		asynq.Queue(queue),
		asynq.MaxRetry(DefaultMaxRetry),
		asynq.Timeout(DefaultTimeout),
	}, opts...)
	return asynq.NewTask(r.Type(), b, all...), nil
}

// CheckQueueName says what is wrong with a queue name, or returns nil. The
// characters it refuses would break asynq's Redis keys, which embed the
// name between braces and colons.
func CheckQueueName(name string) error {
	switch {
	case name == "":
		return &ValidationError{Field: "queue", Problem: "is empty; name a queue, e.g. default"}
	case strings.ContainsAny(name, " \t\r\n:{}"):
		return &ValidationError{Field: "queue", Problem: fmt.Sprintf("%q may not contain spaces, ':' or braces", name)}
	}
	return nil
}

// ValidationError says which field is wrong and what it must be.
type ValidationError struct {
	Field   string
	Problem string
}

// Error is "FIELD PROBLEM", e.g. "platform is required; one of ...". A
// field that is not one refreshq knows is quoted, since keys match exactly.
func (e *ValidationError) Error() string {
	switch {
	case e.Field == "":
		return e.Problem
	case fieldByKey(e.Field) == nil:
		return strconv.Quote(e.Field) + " " + e.Problem
	}
	return e.Field + " " + e.Problem
}

// UnknownTypeError is returned by Parse for a task type refreshq does not
// handle.
type UnknownTypeError struct{ Type string }

// Error names the type and the types refreshq handles.
func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("unknown task type %q; refreshq handles %s", e.Type, strings.Join(Types(), " and "))
}
