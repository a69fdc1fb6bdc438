// Package tracectx carries a W3C traceparent between a Go context and a
// task's payload. It depends on OpenTelemetry's API only, so producers
// (the client, the CLI) carry traces without the SDK or an exporter.
//
// It is not where tracing is set up (see internal/tracing).
package tracectx

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// propagator reads and writes W3C traceparent headers.
var propagator = propagation.TraceContext{}

// Extract returns ctx carrying the remote span context of traceparent, or
// ctx unchanged when traceparent is empty or not valid.
func Extract(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// Traceparent is the W3C traceparent of the span ctx carries, "" when it
// carries none.
func Traceparent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}
