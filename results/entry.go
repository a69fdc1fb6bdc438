package results

import (
	"os"
	"strconv"
	"time"
)

// SchemaVersion is the value of every entry's v field.
const SchemaVersion = "1"

// DefaultStream is the stream's key unless RESULTS_STREAM says otherwise.
const DefaultStream = "refresh:results"

// Status is how a task ended.
type Status string

// The two terminal statuses.
const (
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// ErrorKind classifies a failed result, as docs/reference.md lists them.
type ErrorKind string

// Error kinds. Consumers switch on these: never rename one.
const (
	KindNone            ErrorKind = ""
	KindRateLimited     ErrorKind = "rate_limited"
	KindServer          ErrorKind = "server"
	KindTimeout         ErrorKind = "timeout"
	KindNetwork         ErrorKind = "network"
	KindAuth            ErrorKind = "auth"
	KindPaymentRequired ErrorKind = "payment_required"
	KindNotFound        ErrorKind = "not_found"
	KindBadRequest      ErrorKind = "bad_request"
	KindInvalidResponse ErrorKind = "invalid_response"
	KindInvalidPayload  ErrorKind = "invalid_payload"
	KindUnknownTaskType ErrorKind = "unknown_task_type"
	// KindCancelled: a producer or an operator cancelled the task before
	// it ended; the error field says who.
	KindCancelled ErrorKind = "cancelled"
)

// Entry is one result: one stream entry. All values are strings in the
// stream; Entry holds them typed, and an Entry read from the stream holds
// them as stored too (Fields).
type Entry struct {
	// ID is the stream entry id; it is not a field of the entry.
	ID string `json:"-"`

	TaskID     string
	TaskType   string
	Queue      string
	Provider   string
	Subject    string
	Status     Status
	Attempts   int
	HTTPStatus int
	ErrorKind  ErrorKind
	Error      string
	Result     string // the upstream's 2xx body, verbatim; empty on failure
	Meta       string // the payload's meta, "{}" when none
	EnqueuedAt time.Time
	FinishedAt time.Time
	Worker     string
	// TraceID is the W3C trace id (32 hex digits) the task carried in its
	// payload's traceparent, empty when it carried none.
	TraceID string

	// Fields is the entry as it was read from the stream: every field, as
	// stored, including those of a later schema version that this one does
	// not know, so that printers and the HTTP API can pass an entry on
	// verbatim. It is nil in an Entry that was not read (one about to be
	// published); Publish writes the typed fields above, not these.
	Fields Map `json:"-"`
}

// Field names of a stream entry.
const (
	FieldV          = "v"
	FieldTaskID     = "task_id"
	FieldTaskType   = "task_type"
	FieldQueue      = "queue"
	FieldProvider   = "provider"
	FieldSubject    = "subject"
	FieldStatus     = "status"
	FieldAttempts   = "attempts"
	FieldHTTPStatus = "http_status"
	FieldErrorKind  = "error_kind"
	FieldError      = "error"
	FieldResult     = "result"
	FieldMeta       = "meta"
	FieldEnqueuedAt = "enqueued_at"
	FieldFinishedAt = "finished_at"
	FieldDurationMS = "duration_ms"
	FieldWorker     = "worker"
	FieldTraceID    = "trace_id"
)

// timeLayout is RFC 3339 with fractions, as the contract asks.
const timeLayout = time.RFC3339Nano

// DurationMS is finished_at − enqueued_at in whole milliseconds.
func (e Entry) DurationMS() int64 { return e.FinishedAt.Sub(e.EnqueuedAt).Milliseconds() }

// Succeeded reports whether the task succeeded.
func (e Entry) Succeeded() bool { return e.Status == StatusSucceeded }

// Values returns the entry as Publish writes it: every field of this
// schema version, as strings, in the contract's order, names and values
// alternating.
func (e Entry) Values() []string {
	meta := e.Meta
	if meta == "" {
		meta = "{}"
	}
	return []string{
		FieldV, SchemaVersion,
		FieldTaskID, e.TaskID,
		FieldTaskType, e.TaskType,
		FieldQueue, e.Queue,
		FieldProvider, e.Provider,
		FieldSubject, e.Subject,
		FieldStatus, string(e.Status),
		FieldAttempts, strconv.Itoa(e.Attempts),
		FieldHTTPStatus, strconv.Itoa(e.HTTPStatus),
		FieldErrorKind, string(e.ErrorKind),
		FieldError, e.Error,
		FieldResult, e.Result,
		FieldMeta, meta,
		FieldEnqueuedAt, e.EnqueuedAt.UTC().Format(timeLayout),
		FieldFinishedAt, e.FinishedAt.UTC().Format(timeLayout),
		FieldDurationMS, strconv.FormatInt(e.DurationMS(), 10),
		FieldWorker, e.Worker,
		FieldTraceID, e.TraceID,
	}
}

// Map is the stream entry as a map of its fields: printed with
// encoding/json it is one object whose keys and string values are the
// stream entry's, in sorted key order.
type Map map[string]string

// FromValues decodes a stream entry as go-redis returns it. Fields it does
// not know are kept in Fields only, so later schema versions can add
// fields.
func FromValues(id string, values map[string]any) Entry {
	m := make(Map, len(values))
	for k, v := range values {
		if s, ok := v.(string); ok {
			m[k] = s
		}
	}
	e := Entry{
		ID:        id,
		TaskID:    m[FieldTaskID],
		TaskType:  m[FieldTaskType],
		Queue:     m[FieldQueue],
		Provider:  m[FieldProvider],
		Subject:   m[FieldSubject],
		Status:    Status(m[FieldStatus]),
		ErrorKind: ErrorKind(m[FieldErrorKind]),
		Error:     m[FieldError],
		Result:    m[FieldResult],
		Meta:      m[FieldMeta],
		Worker:    m[FieldWorker],
		TraceID:   m[FieldTraceID],
		Fields:    m,
	}
	e.Attempts, _ = strconv.Atoi(m[FieldAttempts])
	e.HTTPStatus, _ = strconv.Atoi(m[FieldHTTPStatus])
	e.EnqueuedAt, _ = time.Parse(time.RFC3339Nano, m[FieldEnqueuedAt])
	e.FinishedAt, _ = time.Parse(time.RFC3339Nano, m[FieldFinishedAt])
	return e
}

// WorkerName is host:pid, the worker field of the results a process
// publishes unless it is given a name.
func WorkerName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}
