package tasks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Refresh is a decoded and validated refresh task of either type: what the
// worker needs to call the upstream and to write the result.
type Refresh struct {
	Type     string
	Provider string
	// Subject is TEAM/PLATFORM for bundle.social, the account id for hooked.
	Subject string

	TeamID    string // bundle.social only
	Platform  string // bundle.social only
	AccountID string // hooked only

	Meta       json.RawMessage // nil when the payload has none
	EnqueuedAt time.Time       // zero when the producer did not set it
	Deadline   time.Time       // zero when the producer did not set it
}

// ErrUnknownType is returned by Parse for a type refreshq does not handle.
type ErrUnknownType struct{ Type string }

// Error names the type and the types refreshq handles.
func (e *ErrUnknownType) Error() string {
	return fmt.Sprintf("unknown task type %q; refreshq handles %s and %s", e.Type, TypeBundleSocialProfileRefresh, TypeHookedAccountRefresh)
}

// Parse decodes and validates a payload as the worker receives it. Unknown
// payload fields are ignored, so producers can add their own; wrong types,
// missing fields and oversized payloads are a *ValidationError.
func Parse(taskType string, payload []byte) (Refresh, error) {
	provider, ok := ProviderForType(taskType)
	if !ok {
		return Refresh{Type: taskType}, &ErrUnknownType{Type: taskType}
	}
	r := Refresh{Type: taskType, Provider: provider}
	if len(payload) > MaxPayloadBytes {
		return r, &ValidationError{Problem: fmt.Sprintf("payload is %d bytes; at most %d are allowed", len(payload), MaxPayloadBytes)}
	}
	switch taskType {
	case TypeBundleSocialProfileRefresh:
		var p BundleSocialProfileRefresh
		if err := decode(payload, &p); err != nil {
			return r, err
		}
		r.Meta = p.Meta // copied to the result even when something else is wrong
		if err := p.Validate(); err != nil {
			return r, err
		}
		r.Subject, r.TeamID, r.Platform = p.Subject(), p.TeamID, p.Platform
		r.EnqueuedAt, r.Deadline = p.EnqueuedAt, p.Deadline
	case TypeHookedAccountRefresh:
		var p HookedAccountRefresh
		if err := decode(payload, &p); err != nil {
			return r, err
		}
		r.Meta = p.Meta
		if err := p.Validate(); err != nil {
			return r, err
		}
		r.Subject, r.AccountID = p.Subject(), p.AccountID
		r.EnqueuedAt, r.Deadline = p.EnqueuedAt, p.Deadline
	}
	return r, nil
}

func decode(payload []byte, v any) error {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return &ValidationError{Problem: "payload must be a JSON object"}
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return &ValidationError{Field: te.Field, Problem: fmt.Sprintf("must be a %s, not a JSON %s", te.Type, te.Value)}
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return &ValidationError{Field: "enqueued_at/deadline", Problem: fmt.Sprintf("must be RFC 3339 time, e.g. 2026-01-02T15:04:05Z; got %s", pe.Value)}
		}
		return &ValidationError{Problem: "payload is not valid JSON: " + err.Error()}
	}
	return nil
}
