package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Refresh is one refresh of one subject: the value every producer (the
// client, `enqueue`, the HTTP API, the schedule) builds and the worker
// reads back from a task's payload.
//
// Its JSON form is a file line's (see Decode): the provider, its subject
// fields, and the optional queue, meta, deadline and tenant. The task's payload
// (see Payload and Parse) carries the subject and the optional fields; the
// task type stands for the provider, and asynq carries the queue.
type Refresh struct {
	// Provider is one of Providers(): ProviderBundleSocial or ProviderHooked.
	Provider string `json:"provider"`

	// TeamID and Platform name a bundle.social subject.
	TeamID   string `json:"team_id,omitempty"`
	Platform string `json:"platform,omitempty"`
	// AccountID names a hooked.so subject.
	AccountID string `json:"account_id,omitempty"`

	// Queue is the asynq queue the task goes on; empty means DefaultQueue
	// (or, for the client, its Queue option).
	Queue string `json:"queue,omitempty"`
	// Meta is a JSON object of at most MaxMetaBytes copied to the result (a
	// correlation id, say); nil when none.
	Meta json.RawMessage `json:"meta,omitempty"`
	// EnqueuedAt is set by refreshq's producers when they enqueue; the
	// worker measures the task's deadline and duration from it.
	EnqueuedAt time.Time `json:"-"`
	// Deadline, when set, ends the task failed at that time if it has not
	// ended before; the worker's TASK_DEADLINE still applies when sooner.
	Deadline time.Time `json:"deadline,omitzero"`
	// Traceparent is the producer's W3C trace context header value, set
	// from its tracing context rather than written in a file line: the
	// worker's spans continue that trace and the result carries its id.
	Traceparent string `json:"-"`
	// Tenant is who the refresh is for, at most MaxTenantBytes: within
	// one queue and API key, tenants share the budget round-robin. Empty
	// is one tenant of its own.
	Tenant string `json:"tenant,omitempty"`
}

// BundleSocial returns a refresh of a bundle.social team's profile on one
// platform (TIKTOK, INSTAGRAM, ...).
func BundleSocial(teamID, platform string) Refresh {
	return Refresh{Provider: ProviderBundleSocial, TeamID: teamID, Platform: platform}
}

// Hooked returns a refresh of a hooked.so account.
func Hooked(accountID string) Refresh {
	return Refresh{Provider: ProviderHooked, AccountID: accountID}
}

// MaxTenantBytes bounds a tenant name.
const MaxTenantBytes = 256

// Type is the task type of r's provider, "" for an unknown provider.
func (r Refresh) Type() string {
	if p := providerByID(r.Provider); p != nil {
		return p.taskType
	}
	return ""
}

// Subject is how results name what is refreshed: the provider's subject
// fields joined by "/", so TEAM/PLATFORM for bundle.social and the account
// id for hooked.so.
func (r Refresh) Subject() string {
	p := providerByID(r.Provider)
	if p == nil {
		return ""
	}
	parts := make([]string, len(p.subject))
	for i, key := range p.subject {
		parts[i] = *fieldByKey(key).str(&r)
	}
	return strings.Join(parts, "/")
}

// Validate names the first field that is wrong and what it must be, as a
// *ValidationError: the provider, its subject fields (and no other
// provider's), the queue name's syntax and meta. Producers run it before
// enqueuing and the worker again on every payload.
func (r Refresh) Validate() error {
	if ps := r.Problems(); len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// Problems lists every field Validate finds wrong, each a
// *ValidationError, for producers that report them all at once.
func (r Refresh) Problems() []error {
	var ps []error
	p := providerByID(r.Provider)
	switch {
	case r.Provider == "":
		ps = append(ps, &ValidationError{Field: "provider", Problem: "is required; one of " + strings.Join(Providers(), ", ")})
	case p == nil:
		ps = append(ps, &ValidationError{Field: "provider", Problem: fmt.Sprintf("%q is not known; use one of %s", r.Provider, strings.Join(Providers(), ", "))})
	}
	for i := range fields {
		f := &fields[i]
		if f.check == nil || p == nil {
			continue
		}
		v := *f.str(&r)
		switch {
		case !p.uses(f.key) && v != "":
			ps = append(ps, &ValidationError{Field: f.key, Problem: fmt.Sprintf("is not used by %s, which takes %s", p.id, p.takes())})
		case !p.uses(f.key):
		case v == "":
			ps = append(ps, &ValidationError{Field: f.key, Problem: "is required" + f.hint})
		default:
			if err := f.check(v); err != nil {
				ps = append(ps, err)
			}
		}
	}
	if r.Queue != "" {
		if err := CheckQueueName(r.Queue); err != nil {
			ps = append(ps, err)
		}
	}
	for _, tf := range []struct {
		key string
		t   time.Time
	}{{"enqueued_at", r.EnqueuedAt}, {"deadline", r.Deadline}} {
		// RFC 3339 has four-digit years only: a time outside them would
		// make a payload the worker cannot read back.
		if y := tf.t.UTC().Year(); !tf.t.IsZero() && (y < 1970 || y > 9999) {
			ps = append(ps, &ValidationError{Field: tf.key, Problem: fmt.Sprintf("is in the year %d; give a time between 1970 and 9999", y)})
		}
	}
	if err := checkMeta(r.Meta); err != nil {
		ps = append(ps, err)
	}
	if err := validateTraceparent(r.Traceparent); err != nil {
		ps = append(ps, err)
	}
	if len(r.Tenant) > MaxTenantBytes {
		ps = append(ps, &ValidationError{Field: "tenant", Problem: fmt.Sprintf("is %d bytes; at most %d are allowed", len(r.Tenant), MaxTenantBytes)})
	}
	return ps
}

// Payload is r's task payload: its payload fields as one JSON object.
// It does not validate r; NewTask does.
func (r Refresh) Payload() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range fields {
		f := &fields[i]
		if !f.payload {
			continue
		}
		v, ok := f.encode(&r)
		if !ok {
			continue
		}
		// Unescaped, so meta reaches the result as the producer wrote it
		// (json.Marshal would turn & < > into \u0026 ...).
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, &ValidationError{Field: f.key, Problem: "cannot be encoded: " + err.Error()}
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(f.key)
		b.WriteString(`":`)
		b.Write(bytes.TrimSuffix(vb.Bytes(), []byte("\n")))
	}
	b.WriteByte('}')
	if b.Len() > MaxPayloadBytes {
		return nil, &ValidationError{Problem: fmt.Sprintf("payload is %d bytes; at most %d are allowed", b.Len(), MaxPayloadBytes)}
	}
	return b.Bytes(), nil
}

func checkMeta(meta json.RawMessage) error {
	if len(meta) == 0 {
		return nil
	}
	if len(meta) > MaxMetaBytes {
		return &ValidationError{Field: "meta", Problem: fmt.Sprintf("is %d bytes; at most %d are allowed", len(meta), MaxMetaBytes)}
	}
	if t := bytes.TrimSpace(meta); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return &ValidationError{Field: "meta", Problem: "must be a JSON object, e.g. {\"request_id\":\"r1\"}"}
	}
	return nil
}

func checkID(key string) func(string) error {
	return func(v string) error {
		if len(v) > MaxIDLength {
			return &ValidationError{Field: key, Problem: fmt.Sprintf("is %d bytes; at most %d are allowed", len(v), MaxIDLength)}
		}
		for _, c := range v {
			if c < 0x20 || c == 0x7f {
				return &ValidationError{Field: key, Problem: "must not contain control characters"}
			}
		}
		return nil
	}
}

func checkPlatform(v string) error {
	if !IsPlatform(v) {
		return &ValidationError{Field: "platform", Problem: fmt.Sprintf("%q is not a known platform; use one of %s", v, platformList())}
	}
	return nil
}
