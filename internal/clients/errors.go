package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidArgument is returned, wrapped, when a call is made with an
// argument that could never form a valid request (an empty id). No request
// is sent.
var ErrInvalidArgument = errors.New("invalid argument")

// maxMessage bounds a message taken from an upstream body, so an HTML error
// page cannot flood a log line or a results entry.
const maxMessage = 512

// redacted replaces the API key wherever an upstream or a library echoes it.
const redacted = "[REDACTED]"

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, redacted)
}

// redactBody returns a copy of an upstream body with the API key redacted,
// so an error can keep the body for a caller to log or store.
func redactBody(body []byte, secret string) []byte {
	if secret == "" || !bytes.Contains(body, []byte(secret)) {
		return body
	}
	return bytes.ReplaceAll(body, []byte(secret), []byte(redacted))
}

// redactHeader returns a copy of h with the API key redacted from every
// value, for a gateway that echoes request headers.
func redactHeader(h http.Header, secret string) http.Header {
	out := h.Clone()
	for k, vs := range out {
		for i, v := range vs {
			vs[i] = redact(v, secret)
		}
		out[k] = vs
	}
	return out
}

// Issue is one validation problem in a bundle.social 400 body (a zod issue).
type Issue struct {
	// Code is zod's issue code (invalid_type, invalid_enum_value, ...); nil
	// when absent. Unknown codes are kept as they are.
	Code    *string `json:"code"`
	Message string  `json:"message"`
	// Path locates the field: strings for keys, float64 for array indexes.
	Path []any `json:"path"`
}

// String renders the issue as "path.to.field: message".
func (i Issue) String() string {
	if len(i.Path) == 0 {
		return i.Message
	}
	parts := make([]string, len(i.Path))
	for n, p := range i.Path {
		parts[n] = fmt.Sprint(p)
	}
	return strings.Join(parts, ".") + ": " + i.Message
}

// APIError is an upstream's non-2xx answer.
type APIError struct {
	Provider   string // "bundle_social" or "hooked"
	StatusCode int
	// Message is the upstream's message: the JSON "message" (or "error")
	// when the body is JSON, else the body's text, trimmed and bounded.
	// The API key is redacted from it.
	Message string
	// Issues are bundle.social's validation issues on a 400, if any.
	Issues []Issue
	// RetryAfter is how long the upstream asked us to wait, from
	// Retry-After or RateLimit-Reset headers, on 429 and 503 only.
	// RetryAfterKnown is false when no usable header was sent.
	RetryAfter      time.Duration
	RetryAfterKnown bool
	// Body is at most the first 64 KiB of the response body, with the API
	// key redacted like Message.
	Body []byte
	// Header is the response's header, with the API key redacted.
	Header http.Header
}

// Error reads "provider: 404 Not Found: message", then issues and any
// wait the upstream asked for.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(statusLine(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	const shown = 3
	for n, is := range e.Issues {
		if n == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Issues)-shown)
			break
		}
		b.WriteString("; ")
		b.WriteString(is.String())
	}
	if e.RetryAfterKnown {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	return b.String()
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return "status " + strconv.Itoa(code)
}

// errorBody covers bundle.social's documented error body and the shapes
// gateways and hooked.so commonly send.
type errorBody struct {
	Message json.RawMessage `json:"message"`
	Error   json.RawMessage `json:"error"`
	Issues  []Issue         `json:"issues"`
}

func newAPIError(provider string, status int, h http.Header, body []byte, secret string) *APIError {
	e := &APIError{Provider: provider, StatusCode: status, Body: redactBody(body, secret), Header: redactHeader(h, secret)}
	var eb errorBody
	if json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		_ = unmarshalLenient(body, &eb)
		e.Message = jsonMessage(eb.Message)
		if e.Message == "" {
			e.Message = jsonMessage(eb.Error)
		}
		e.Issues = eb.Issues
		for i := range e.Issues {
			e.Issues[i].Message = bound(redact(e.Issues[i].Message, secret))
		}
	}
	if e.Message == "" {
		e.Message = string(bytes.TrimSpace(body))
	}
	e.Message = bound(redact(e.Message, secret))
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter, e.RetryAfterKnown = ParseRetryAfter(h, serverNow(h))
	}
	return e
}

// serverNow is the upstream's clock when it sent a Date header: an HTTP-date
// or epoch reset is measured against the clock that wrote it, so skew
// between the two machines does not stretch or shrink the wait.
func serverNow(h http.Header) time.Time {
	if t, err := http.ParseTime(h.Get("Date")); err == nil {
		return t
	}
	return time.Now()
}

// jsonMessage reads a message that is a string or, as NestJS sends for
// validation errors, a list of strings.
func jsonMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.TrimSpace(strings.Join(list, "; "))
	}
	return ""
}

// bound trims s to maxMessage bytes on a rune boundary, and replaces
// invalid UTF-8, since messages end up in JSON and log lines.
func bound(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// InvalidResponseError is a 2xx answer that is not the documented success:
// not JSON, over 1 MiB, missing the core field, or "success": false.
type InvalidResponseError struct {
	Provider   string
	StatusCode int
	Reason     string
	// Body is at most the first 64 KiB of the response body, with the API
	// key redacted.
	Body []byte
}

func (e *InvalidResponseError) Error() string {
	return fmt.Sprintf("%s: invalid response (%s): %s", e.Provider, statusLine(e.StatusCode), e.Reason)
}

func newInvalidResponse(provider string, status int, body []byte, secret, reason string) *InvalidResponseError {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	return &InvalidResponseError{Provider: provider, StatusCode: status, Reason: bound(redact(reason, secret)), Body: redactBody(body, secret)}
}

// TransportError is a request that got no complete response: it could not
// connect, the connection broke, the body was cut off, or it timed out or
// was cancelled. errors.Is(err, context.Canceled) tells the caller's own
// cancellation apart.
type TransportError struct {
	Provider string
	// StatusCode is the status of a response whose body was cut off, 0
	// when no response arrived at all.
	StatusCode int
	// Timeout is true when the per-request timeout or the caller's
	// deadline ended the request.
	Timeout bool
	Err     error

	secret string
}

func (e *TransportError) Error() string {
	what := "request failed"
	if e.Timeout {
		what = "request timed out"
	}
	if e.StatusCode != 0 {
		what = "response cut off after " + statusLine(e.StatusCode)
	}
	msg := fmt.Sprintf("%s: %s", e.Provider, what)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return redact(msg, e.secret)
}

// Unwrap lets errors.Is see context.Canceled, context.DeadlineExceeded and
// network errors.
func (e *TransportError) Unwrap() error { return e.Err }

// notDecoded says why a success body could not be decoded. Unmarshal
// checks the whole body's syntax before it decodes any of it, so a
// *json.SyntaxError means it is not JSON at all: no pass of json.Valid of
// its own is needed to tell the two apart.
func notDecoded(err error) string {
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return "body is not JSON"
	}
	return "body is not a JSON object"
}

// unmarshalLenient decodes what it can: a field of an unexpected type is left
// zero instead of failing the whole body, because upstreams change types of
// fields we do not depend on, and the raw body is kept anyway.
func unmarshalLenient(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return nil
	}
	return err
}
