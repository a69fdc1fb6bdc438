package tasks

import (
	"encoding/json"
	"fmt"
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

// Default options given by the constructors.
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

// TypeForProvider returns the task type that refreshes a provider's subjects.
func TypeForProvider(provider string) (string, bool) {
	switch provider {
	case ProviderBundleSocial:
		return TypeBundleSocialProfileRefresh, true
	case ProviderHooked:
		return TypeHookedAccountRefresh, true
	}
	return "", false
}

// ProviderForType returns the provider a task type belongs to.
func ProviderForType(taskType string) (string, bool) {
	switch taskType {
	case TypeBundleSocialProfileRefresh:
		return ProviderBundleSocial, true
	case TypeHookedAccountRefresh:
		return ProviderHooked, true
	}
	return "", false
}

// Common holds the optional fields both payloads share.
type Common struct {
	// Meta is any JSON object of at most MaxMetaBytes, copied to the result
	// (a correlation id, say).
	Meta json.RawMessage `json:"meta,omitempty"`
	// EnqueuedAt is set by refreshq's producers; the worker measures the
	// task's deadline and duration from it.
	EnqueuedAt time.Time `json:"enqueued_at,omitzero"`
	// Deadline, when set, ends the task failed at that time if it has not
	// ended before; the worker's TASK_DEADLINE still applies when sooner.
	Deadline time.Time `json:"deadline,omitzero"`
}

func (c Common) validate() error {
	if len(c.Meta) > 0 {
		if len(c.Meta) > MaxMetaBytes {
			return &ValidationError{Field: "meta", Problem: fmt.Sprintf("is %d bytes; at most %d are allowed", len(c.Meta), MaxMetaBytes)}
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c.Meta, &obj); err != nil || obj == nil {
			return &ValidationError{Field: "meta", Problem: "must be a JSON object, e.g. {\"request_id\":\"r1\"}"}
		}
	}
	return nil
}

// BundleSocialProfileRefresh asks bundle.social to refresh the profile of a
// team's account on one platform.
type BundleSocialProfileRefresh struct {
	TeamID   string `json:"team_id"`
	Platform string `json:"platform"`
	Common
}

// Validate names the first field that is wrong and what it must be.
func (p BundleSocialProfileRefresh) Validate() error {
	if err := validateID("team_id", p.TeamID); err != nil {
		return err
	}
	if p.Platform == "" {
		return &ValidationError{Field: "platform", Problem: "is required; one of " + PlatformList()}
	}
	if !IsPlatform(p.Platform) {
		return &ValidationError{Field: "platform", Problem: fmt.Sprintf("%q is not a known platform; use one of %s", p.Platform, PlatformList())}
	}
	return p.Common.validate()
}

// Subject is how results name what was refreshed: TEAM/PLATFORM.
func (p BundleSocialProfileRefresh) Subject() string { return p.TeamID + "/" + p.Platform }

// HookedAccountRefresh asks hooked.so to refresh one analysed account.
type HookedAccountRefresh struct {
	AccountID string `json:"account_id"`
	Common
}

// Validate names the first field that is wrong and what it must be.
func (p HookedAccountRefresh) Validate() error {
	if err := validateID("account_id", p.AccountID); err != nil {
		return err
	}
	return p.Common.validate()
}

// Subject is how results name what was refreshed: the account id.
func (p HookedAccountRefresh) Subject() string { return p.AccountID }

func validateID(field, v string) error {
	if v == "" {
		return &ValidationError{Field: field, Problem: "is required"}
	}
	if len(v) > MaxIDLength {
		return &ValidationError{Field: field, Problem: fmt.Sprintf("is %d bytes; at most %d are allowed", len(v), MaxIDLength)}
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return &ValidationError{Field: field, Problem: "must not contain control characters"}
		}
	}
	return nil
}

// ValidationError says which payload field is wrong and what it must be.
type ValidationError struct {
	Field   string
	Problem string
}

// Error is "FIELD PROBLEM", e.g. "platform is required; one of ...".
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + " " + e.Problem
}

// defaultOptions come first so a caller's options override them.
func defaultOptions(opts []asynq.Option) []asynq.Option {
	return append([]asynq.Option{
		asynq.Queue(DefaultQueue),
		asynq.MaxRetry(DefaultMaxRetry),
		asynq.Timeout(DefaultTimeout),
	}, opts...)
}

func newTask(taskType string, p any, opts []asynq.Option) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", taskType, err)
	}
	if len(b) > MaxPayloadBytes {
		return nil, &ValidationError{Problem: fmt.Sprintf("payload is %d bytes; at most %d are allowed", len(b), MaxPayloadBytes)}
	}
	return asynq.NewTask(taskType, b, defaultOptions(opts)...), nil
}

// NewBundleSocialProfileRefreshTask validates p and returns a task with
// refreshq's default options, overridden by opts.
func NewBundleSocialProfileRefreshTask(p BundleSocialProfileRefresh, opts ...asynq.Option) (*asynq.Task, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newTask(TypeBundleSocialProfileRefresh, p, opts)
}

// NewHookedAccountRefreshTask validates p and returns a task with refreshq's
// default options, overridden by opts.
func NewHookedAccountRefreshTask(p HookedAccountRefresh, opts ...asynq.Option) (*asynq.Task, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return newTask(TypeHookedAccountRefresh, p, opts)
}
