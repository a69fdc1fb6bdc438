package tracectx

import (
	"context"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := Traceparent(Extract(context.Background(), tp)); got != tp {
		t.Errorf("Traceparent(Extract(%q)) = %q", tp, got)
	}
	for _, bad := range []string{"", "nonsense", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		if got := Traceparent(Extract(context.Background(), bad)); got != "" {
			t.Errorf("Traceparent(Extract(%q)) = %q, want none", bad, got)
		}
	}
}
