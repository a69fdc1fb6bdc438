package tasks

import (
	"fmt"
	"strings"
)

// TraceID returns the trace id (32 lower-case hex digits) of a W3C
// traceparent header value, "version-traceid-parentid-flags", and whether
// the value is one. An all-zero trace or parent id is invalid, as the W3C
// Trace Context recommendation says.
func TraceID(traceparent string) (string, bool) {
	parts := strings.Split(traceparent, "-")
	if len(parts) < 4 {
		return "", false
	}
	version, trace, parent, flags := parts[0], parts[1], parts[2], parts[3]
	switch {
	case !isHex(version, 2) || version == "ff",
		version == "00" && len(parts) != 4,
		!isHex(trace, 32) || trace == strings.Repeat("0", 32),
		!isHex(parent, 16) || parent == strings.Repeat("0", 16),
		!isHex(flags, 2):
		return "", false
	}
	return trace, true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validateTraceparent(v string) error {
	if v == "" {
		return nil
	}
	if _, ok := TraceID(v); !ok {
		return &ValidationError{Field: "traceparent", Problem: fmt.Sprintf("%q is not a W3C traceparent; write e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", v)}
	}
	return nil
}

// TraceID is the trace id of r's traceparent, empty when it has none.
func (r Refresh) TraceID() string {
	id, _ := TraceID(r.Traceparent)
	return id
}
