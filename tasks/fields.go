package tasks

import (
	"encoding/json"
	"fmt"
	"time"
)

// field is one key a refresh may carry in JSON. Every decoder and the
// payload encoder walk this table, so a new field is one entry here (and
// its Refresh field), with its rule in Validate when it has one.
type field struct {
	key string
	// input: producers may write it in a file line or an HTTP API object.
	// payload: it travels in the task's payload.
	input, payload bool

	// str points at a string field's value; decode and encode are derived
	// from it unless set.
	str func(*Refresh) *string
	// check validates a subject field's value once it is known to be set;
	// a field with check is a subject field, which a provider's subject
	// either requires or refuses.
	check func(string) error
	hint  string // said after "is required" for a missing subject field

	decode func(r *Refresh, raw json.RawMessage) error // raw is never null
	encode func(r *Refresh) (v any, set bool)
}

var fields = []field{
	{key: "provider", input: true, str: func(r *Refresh) *string { return &r.Provider }},
	{key: "team_id", input: true, payload: true, str: func(r *Refresh) *string { return &r.TeamID }, check: checkID("team_id")},
	{key: "platform", input: true, payload: true, str: func(r *Refresh) *string { return &r.Platform }, check: checkPlatform, hint: "; one of " + platformList()},
	{key: "account_id", input: true, payload: true, str: func(r *Refresh) *string { return &r.AccountID }, check: checkID("account_id")},
	{key: "queue", input: true, str: func(r *Refresh) *string { return &r.Queue }},
	{key: "meta", input: true, payload: true,
		decode: func(r *Refresh, raw json.RawMessage) error { r.Meta = raw; return nil },
		encode: func(r *Refresh) (any, bool) { return r.Meta, len(r.Meta) > 0 }},
	timeField("enqueued_at", false, func(r *Refresh) *time.Time { return &r.EnqueuedAt }),
	timeField("deadline", true, func(r *Refresh) *time.Time { return &r.Deadline }),
	// A payload's traceparent that is not one is dropped, not an error, as
	// W3C Trace Context asks of a receiver: a broken trace header is no
	// reason to fail a refresh.
	{key: "traceparent", payload: true,
		decode: func(r *Refresh, raw json.RawMessage) error {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				if _, ok := TraceID(s); ok {
					r.Traceparent = s
				}
			}
			return nil
		},
		encode: func(r *Refresh) (any, bool) { return r.Traceparent, r.Traceparent != "" }},
	{key: "tenant", input: true, payload: true, str: func(r *Refresh) *string { return &r.Tenant }},
}

func init() {
	for i := range fields {
		f := &fields[i]
		if f.str == nil {
			continue
		}
		get := f.str
		if f.decode == nil {
			f.decode = func(r *Refresh, raw json.RawMessage) error {
				if err := json.Unmarshal(raw, get(r)); err != nil {
					return &ValidationError{Field: f.key, Problem: "must be a string, not " + jsonKind(raw)}
				}
				return nil
			}
		}
		if f.encode == nil {
			f.encode = func(r *Refresh) (any, bool) { v := *get(r); return v, v != "" }
		}
	}
}

func timeField(key string, input bool, get func(*Refresh) *time.Time) field {
	return field{key: key, input: input, payload: true,
		decode: func(r *Refresh, raw json.RawMessage) error {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return &ValidationError{Field: key, Problem: "must be an RFC 3339 time string, e.g. \"2026-01-02T15:04:05Z\", not " + jsonKind(raw)}
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return &ValidationError{Field: key, Problem: fmt.Sprintf("must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z; got %q", truncate(s, 64))}
			}
			*get(r) = t
			return nil
		},
		encode: func(r *Refresh) (any, bool) {
			t := *get(r)
			return t.UTC().Format(time.RFC3339Nano), !t.IsZero()
		},
	}
}

func fieldByKey(key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

// InputFields lists the keys a file line or HTTP API object may carry.
func InputFields() []string {
	var keys []string
	for _, f := range fields {
		if f.input {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// jsonKind names a JSON value's kind for messages.
func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a JSON string"
	case '{':
		return "a JSON object"
	case '[':
		return "a JSON array"
	case 't', 'f':
		return "a JSON boolean"
	case 'n':
		return "null"
	}
	return "a JSON number"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
